"""predict(): tiles equal whole, every input kind, progress, cancellation, metadata."""

import numpy as np
import pytest
from conftest import make_tiny

from napari_resjnd import Cancelled, iter_predict, predict
from napari_resjnd.core.devices import resolve_device
from napari_resjnd.core.events import drive
from napari_resjnd.core.inference import auto_tile, tile_boxes
from napari_resjnd.core.jnd import jnd_from_cpl, normalise_max


def test_tiled_equals_whole_at_full_receptive_field(rng):
    net = make_tiny(channels=4, recursions=25)  # the real 52 px radius, few channels
    img = rng.integers(0, 256, (150, 171, 3), dtype=np.uint8)
    whole = predict(net, img, tile=1000, device="cpu")
    tiled = predict(net, img, tile=48, device="cpu")
    assert tiled.metadata["tile"] == 48 and whole.metadata["tile"] == 1000
    assert np.abs(tiled.jnd - whole.jnd).max() < 0.01
    assert np.abs(tiled.residual - whole.residual).max() < 0.01


def test_too_small_halo_would_differ(rng, monkeypatch):
    import napari_resjnd.core.inference as inf

    net = make_tiny(channels=4, recursions=25)
    img = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    whole = predict(net, img, tile=1000, device="cpu")
    real = inf.tile_boxes
    monkeypatch.setattr(inf, "tile_boxes", lambda h, w, t, halo: real(h, w, t, halo // 2))
    tiled = predict(net, img, tile=40, device="cpu")
    assert np.abs(tiled.jnd - whole.jnd).max() > 0.01


def test_output_kinds_and_units(tiny, rng):
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    p = predict(tiny, img, device="cpu")
    assert p.cpl.shape == p.residual.shape == (40, 50, 3)
    assert p.jnd.shape == (40, 50) and p.jnd.dtype == np.float32
    x = img / np.float32(255)
    np.testing.assert_allclose(p.residual, (p.cpl - x) * 255, atol=1e-3)
    np.testing.assert_allclose(p.jnd, jnd_from_cpl(p.cpl, x), atol=1e-3)
    assert (p.residual < 0).any() and (p.residual > 0).any()
    assert p.jnd.max() > 0.5


def test_grey_rgba_uint16_float_agree(tiny, rng):
    rgb8 = rng.integers(0, 256, (30, 35, 3), dtype=np.uint8)
    ref = predict(tiny, rgb8, device="cpu")
    rgba = np.concatenate([rgb8, rng.integers(0, 256, (30, 35, 1), dtype=np.uint8)], -1)
    np.testing.assert_allclose(predict(tiny, rgba, device="cpu").jnd, ref.jnd, atol=1e-4)
    u16 = rgb8.astype(np.uint16) * 257
    np.testing.assert_allclose(predict(tiny, u16, device="cpu").jnd, ref.jnd, atol=1e-3)
    f = rgb8.astype(np.float64) / 255
    np.testing.assert_allclose(predict(tiny, f, device="cpu").jnd, ref.jnd, atol=1e-3)

    grey = rgb8[..., 0]
    g = predict(tiny, grey, device="cpu")
    assert g.cpl.shape == g.residual.shape == g.jnd.shape == (30, 35)
    as_rgb = predict(tiny, np.repeat(grey[..., None], 3, -1), device="cpu")
    np.testing.assert_allclose(g.jnd, as_rgb.jnd, atol=1e-4)
    np.testing.assert_allclose(g.cpl, as_rgb.cpl.mean(-1), atol=1e-5)


def test_stacks_are_processed_plane_by_plane(tiny, rng):
    stack = rng.integers(0, 256, (2, 3, 20, 24, 3), dtype=np.uint8)
    calls = []
    with pytest.raises(ValueError, match=r"shape \(2, 3, 20, 24, 3\) is not an image"):
        predict(tiny, stack, device="cpu")  # a stack only when the caller says so
    p = predict(tiny, stack, device="cpu", tile=12, rgb=True, progress=lambda d, t: calls.append((d, t)))
    assert p.jnd.shape == (2, 3, 20, 24) and p.cpl.shape == stack.shape
    one = predict(tiny, stack[1, 2], device="cpu")
    np.testing.assert_allclose(p.jnd[1, 2], one.jnd, atol=1e-4)
    assert calls == [(i, 6 * 4) for i in range(1, 25)]
    grey_stack = rng.integers(0, 256, (4, 20, 24), dtype=np.uint8)
    assert predict(tiny, grey_stack, device="cpu", rgb=False).jnd.shape == (4, 20, 24)


def test_image_smaller_than_tile_and_than_halo(tiny, rng):
    img = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    assert predict(tiny, img, tile=256, device="cpu").jnd.shape == (3, 5)
    assert predict(tiny, img, tile=2, device="cpu").jnd.shape == (3, 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_raise(tiny, bad):
    img = np.full((10, 10, 3), 0.5)
    img[3, 4, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        predict(tiny, img, device="cpu")


@pytest.mark.parametrize(
    "img, match",
    [
        (np.zeros((10, 10, 3), np.int32), "unsupported pixel type"),
        (np.zeros(10, np.uint8), r"shape \(10,\) is not an image"),
        (np.zeros((12, 10, 2), np.uint8), r"shape \(12, 10, 2\) is not an image"),
        (np.zeros((12, 10, 5), np.uint8), r"shape \(12, 10, 5\) is not an image"),
        (np.zeros((4, 12, 10), np.uint8), r"say rgb=False"),
        (np.zeros((0, 10), np.uint8), "empty"),
    ],
)
def test_bad_inputs_raise(tiny, img, match):
    with pytest.raises(ValueError, match=match):
        predict(tiny, img, device="cpu")


def test_auto_precision_resolves_per_device(tiny):
    from napari_resjnd.core.devices import cpu_has_fast_bf16

    p = predict(tiny, np.zeros((8, 8, 3), np.uint8), device="cpu", precision="auto")
    assert p.metadata["precision"] == ("bf16" if cpu_has_fast_bf16() else "fp32")


def test_prepared_copy_follows_weight_changes(tiny, rng):
    import torch

    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    a = predict(tiny, img, device="cpu")
    with torch.no_grad():
        tiny.output.weight.mul_(2)  # in place, as an optimiser step does
    b = predict(tiny, img, device="cpu")
    np.testing.assert_allclose(b.residual, 2 * a.residual, rtol=1e-4, atol=1e-4)
    assert next(tiny.parameters()).dtype == torch.float32  # the caller's model is untouched


def test_bad_precision_and_device(tiny):
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="precision must be one of"):
        predict(tiny, img, precision="int4", device="cpu")
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        predict(tiny, img, precision="fp16", device="cpu")


def test_bf16_close_to_fp32(tiny, rng):
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a = predict(tiny, img, device="cpu")
    b = predict(tiny, img, device="cpu", precision="bf16")
    assert b.metadata["precision"] == "bf16"
    assert np.abs(a.jnd - b.jnd).mean() < 0.5


def test_cancel_between_tiles_returns_nothing(tiny, rng):
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    seen = []
    with pytest.raises(Cancelled):
        predict(
            tiny, img, tile=10, device="cpu", progress=lambda d, t: seen.append(d), should_stop=lambda: len(seen) >= 3
        )
    assert seen == [1, 2, 3]


def test_cancel_inside_a_tile(rng):
    net = make_tiny(channels=4, recursions=25)
    img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 5  # stops during the network's recursions of the only tile

    with pytest.raises(Cancelled):
        predict(net, img, device="cpu", should_stop=stop)
    assert len(asked) == 6


def test_metadata_records_provenance(tiny):
    p = predict(tiny, np.zeros((16, 16, 3), np.uint8), device="cpu")
    m = p.metadata
    assert m["weights"] == "tiny-8x2" and m["weights_sha256"] == "0" * 64
    assert m["device"] == "cpu" and m["precision"] == "fp32" and m["tile"] == 16
    assert m["seconds"] >= 0 and m["input_shape"] == [16, 16, 3]


def test_auto_tile_whole_image_when_it_fits_else_bounded():
    cpu = resolve_device("cpu")
    assert auto_tile(400, 500, cpu, "fp32") == 500
    t = auto_tile(2000, 2000, cpu, "fp32")
    assert 64 <= t < 2000 and t % 32 == 0
    assert auto_tile(2000, 2000, cpu, "bf16") > t


def test_auto_tiles_are_balanced_rectangles_within_the_memory_of_square_ones():
    """768 x 512 with 448 px squares: 4 tiles computing 1.37x the pixels; balanced: 2
    tiles of 384 x 512, 1.13x. Every padded tile fits where a padded square did."""
    from napari_resjnd.core.inference import _padded_pixels, balanced_tile

    assert balanced_tile(512, 768, 448, 52) == (512, 384)
    assert balanced_tile(400, 500, 500, 52) == 500  # the whole image fits: one tile
    for h, w, side in [(512, 768, 448), (2828, 4242, 448), (1000, 1000, 448), (600, 2000, 320), (130, 900, 64)]:
        tile = balanced_tile(h, w, side, 52)
        assert _padded_pixels(h, w, tile, 52) <= _padded_pixels(h, w, side, 52)
        cap = min(h, side + 104) * min(w, side + 104)
        cover = np.zeros((h, w), np.int8)
        for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_boxes(h, w, tile, 52):
            cover[y0:y1, x0:x1] += 1
            assert (py1 - py0) * (px1 - px0) <= cap
        assert (cover == 1).all()


def test_auto_tiling_gives_the_same_result_and_says_which_tiles(tiny, monkeypatch, rng):
    import napari_resjnd.core.inference as inf

    img = rng.integers(0, 256, (100, 150, 3), np.uint8)
    monkeypatch.setattr(inf, "auto_tile", lambda h, w, *a, **k: 64)  # as if memory allowed 64 px squares
    tiled = predict(tiny, img, device="cpu")
    assert tiled.metadata["tile"] == [50, 75]  # 2 x 2 tiles, not 2 x 3 squares (fewer halo pixels)
    np.testing.assert_allclose(tiled.jnd, predict(tiny, img, device="cpu", tile=1000).jnd, atol=1e-4)


def test_tile_boxes_cover_once():
    cover = np.zeros((37, 50), int)
    for (y0, y1, x0, x1), (py0, _py1, _px0, px1) in tile_boxes(37, 50, 16, 5):
        cover[y0:y1, x0:x1] += 1
        assert py0 == max(0, y0 - 5) and px1 == min(50, x1 + 5)
    assert (cover == 1).all()


def test_normalise_max_matches_the_authors_rounding():
    j = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    assert normalise_max(j).tolist() == [[0, 64], [128, 255]]  # 63.75 -> 64, 127.5 -> 128 (even)
    assert normalise_max(np.zeros((2, 2))).max() == 0


def test_tiles_nearest_the_view_come_first_and_the_result_is_bit_identical(tiny, rng):
    from napari_resjnd.core.events import TileDone

    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    plain = predict(tiny, img, device="cpu", precision="fp32", tile=32)
    events: list[TileDone] = []
    steps = iter_predict(tiny, img, device="cpu", precision="fp32", tile=32, first=(80.0, 120.0))
    viewed = drive(steps, events.append)
    y0, y1, x0, x1 = events[0].box
    assert y0 <= 80 < y1 and x0 <= 120 < x1  # the tile under the point first
    assert [e.done for e in events] == list(range(1, 13)) and events[-1].total == 12
    assert np.array_equal(viewed.jnd, plain.jnd) and np.array_equal(viewed.cpl, plain.cpl)
    # each event carries its tile's final values
    for e in events:
        a, b, c, d = e.box
        assert np.array_equal(e.cpl, plain.cpl[a:b, c:d])
