"""int8 inference (OpenVINO): the accuracy bound on real images, the disk cache,
tiling, cancellation, and how "auto" and bad requests are handled."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from conftest import JND_REFERENCE, make_tiny
from PIL import Image

from napari_resjnd import load_model, predict
from napari_resjnd.cli import main
from napari_resjnd.core import int8
from napari_resjnd.core import precision as precisions
from napari_resjnd.core.devices import cpu_has_fast_bf16
from napari_resjnd.core.inference import Cancelled
from napari_resjnd.core.precision import ACCURACY_BOUND
from napari_resjnd.core.precision import resolve as resolve_precision
from napari_resjnd.core.weights import is_registry_weights

pytest.importorskip("openvino")


@pytest.fixture(autouse=True)
def fresh_process_cache():
    """Each test starts as a new process would: nothing compiled in memory."""
    int8._compiled.clear()


@pytest.mark.slow
def test_bound_holds_on_the_reference_photos(official_cache):
    """The jnd-reference inputs (none in the calibration set), centre crops: mean
    |JND(int8) - JND(fp32)| <= 0.25 and 99.9th percentile <= 3 grey levels."""
    model = load_model("resjnd-cplset")
    paths = sorted((JND_REFERENCE / "inputs").glob("*.png"))
    if not paths:
        pytest.skip(f"no reference inputs in {JND_REFERENCE}")
    for path in paths:
        img = np.asarray(Image.open(path))[64:192, 64:192]
        exact = predict(model, img, device="cpu", precision="fp32").jnd
        fast = predict(model, img, device="cpu", precision="int8")
        assert fast.metadata["precision"] == "int8"
        err = np.abs(fast.jnd - exact)
        print(
            f"{path.name}: JND {exact.mean():.2f}; "
            f"int8 error mean {err.mean():.3f}, p99.9 {np.percentile(err, 99.9):.2f}"
        )
        assert ACCURACY_BOUND.holds(err.mean(), np.percentile(err, 99.9)), path.name
        assert exact.mean() > 0.5  # the maps compared are not empty


def test_auto_picks_int8_only_for_registry_weights(official_cache):
    cpu = torch.device("cpu")
    published = load_model("resjnd-cplset")
    other = make_tiny()
    assert is_registry_weights(published) and not is_registry_weights(other)
    choice = precisions.choose("auto", cpu, inference=True, registry_weights=True)
    assert choice.precision == "int8" and "registry weights" in choice.reason
    assert resolve_precision("auto", cpu, inference=True, registry_weights=False) == (
        "bf16" if cpu_has_fast_bf16() else "fp32"
    )
    assert resolve_precision("auto", cpu) != "int8"  # training never
    assert predict(other, np.zeros((8, 8, 3), np.uint8), device="cpu", precision="auto").metadata["precision"] != "int8"


def test_disk_cache_is_keyed_by_the_weights_and_survives_the_process(tmp_path, monkeypatch):
    monkeypatch.setenv(int8.CACHE_ENV, str(tmp_path / "int8"))
    model = make_tiny(channels=8, recursions=6)
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    t = time.perf_counter()
    first = predict(model, img, device="cpu", precision="int8")
    first_s = time.perf_counter() - t
    entry = int8.cached_model_path(model).parent
    assert sorted(p.name for p in entry.iterdir()) == ["model.bin", "model.xml"]
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".tmp")]  # nothing half-written
    print(
        f"first int8 call, tiny network: {first_s:.1f} s; "
        f"cache entry {sum(p.stat().st_size for p in entry.iterdir())} B"
    )

    # A new process (here: an empty in-memory cache) reads the disk cache, quantising nothing.
    int8._compiled.clear()
    monkeypatch.setattr(int8, "quantize", lambda m: pytest.fail("quantised again despite the disk cache"))
    again = predict(model, img, device="cpu", precision="int8")
    np.testing.assert_array_equal(again.jnd, first.jnd)

    # Changed weights (fine-tuning in place) get their own entry: never the stale network.
    monkeypatch.undo()
    monkeypatch.setenv(int8.CACHE_ENV, str(tmp_path / "int8"))
    with torch.no_grad():
        model.output.weight.mul_(2)
    changed = predict(model, img, device="cpu", precision="int8")
    assert int8.cached_model_path(model).parent != entry
    exact = predict(model, img, device="cpu", precision="fp32")
    assert np.abs(changed.jnd - exact.jnd).mean() < np.abs(first.jnd - exact.jnd).mean()


def _convolution_precisions(compiled) -> dict[str, int]:
    from collections import Counter

    return Counter(
        op.get_rt_info()["runtimePrecision"].astype(str)
        for op in compiled.get_runtime_model().get_ordered_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    )


@pytest.mark.slow
def test_both_schemes_compile_as_designed_and_two_passes_beat_one(official_cache):
    """The published network as OpenVINO compiles it: two-pass scheme, 25 x 2 recursion
    convolutions in int8 plus 6 x 2 for the second passes, fp32 only for the 3-channel
    input and output convolutions; the fp32 scheme, 4 recursions in fp32. Two passes
    bring the error of plain int8 recursions down to that of fp32 ones."""
    from napari_resjnd.core import int8_graph

    model = load_model("resjnd-cplset")
    img = np.asarray(Image.open(sorted((JND_REFERENCE / "inputs").glob("*.png"))[0]))[64:192, 64:192]
    x = np.repeat(img[..., None], 3, -1).astype(np.float32) / 255 if img.ndim == 2 else img / np.float32(255)
    exact = predict(model, img, device="cpu", precision="fp32").jnd
    highest = int8_graph.activation_ranges(model, int8_graph.calibration_images())
    errors, n = {}, int8_graph.TWO_PASS_RECURSIONS
    for name, scheme, expected in [
        ("two-pass", {"two_pass": n}, {"u8": 50 + 2 * n, "f32": 2}),
        ("fp32-last-4", {"two_pass": 0, "fp32": 4}, {"u8": 42, "f32": 10}),
        ("one-pass", {"two_pass": 0}, {"u8": 50, "f32": 2}),
    ]:
        network = int8_graph.build(model, highest, **scheme)
        compiled = int8._core().compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        assert _convolution_precisions(compiled) == expected, name
        cpl = compiled({0: x.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
        errors[name] = float(np.abs(np.sqrt((((cpl - x) * 255) ** 2).mean(-1)) - exact).mean())
    print("mean JND error:", {k: round(v, 3) for k, v in errors.items()})
    assert errors["two-pass"] < 0.03 and errors["fp32-last-4"] < 0.03 and errors["one-pass"] > 0.06


def test_the_scheme_follows_the_cpu(monkeypatch):
    """Two passes only where oneDNN may use int8 dot products (VNNI, AMX): capping its
    instruction set at AVX2 (as on a CPU without them) gives the fp32 scheme."""
    from napari_resjnd.core import int8_graph

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert int8_graph.cpu_scheme() == {"two_pass": 0, "fp32": int8_graph.FP32_RECURSIONS}
    assert int8_graph.scheme_name() == "fp32-last4"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    monkeypatch.setattr("torch.cpu._is_vnni_supported", lambda: True, raising=False)
    assert int8_graph.cpu_scheme() == {"two_pass": int8_graph.TWO_PASS_RECURSIONS, "fp32": 0}
    monkeypatch.setattr("torch.cpu._is_vnni_supported", lambda: False, raising=False)
    monkeypatch.setattr("torch.cpu._is_amx_tile_supported", lambda: False, raising=False)
    assert int8_graph.cpu_scheme()["two_pass"] == 0


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv(int8.CACHE_ENV, str(tmp_path / "int8"))
    model = make_tiny(channels=8, recursions=6)
    img = np.full((24, 24, 3), 100, np.uint8)
    good = predict(model, img, device="cpu", precision="int8").jnd
    int8._compiled.clear()
    int8.cached_model_path(model).write_text("<not a model")
    np.testing.assert_array_equal(predict(model, img, device="cpu", precision="int8").jnd, good)


def test_tiles_agree_with_the_whole_image_and_report_progress(tmp_path):
    model = make_tiny(channels=8, recursions=6)
    img = np.random.default_rng(3).integers(0, 256, (70, 90, 3), np.uint8)
    whole = predict(model, img, device="cpu", precision="int8", tile=1000)
    seen: list[tuple[int, int]] = []
    tiled = predict(model, img, device="cpu", precision="int8", tile=32, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(k, 9) for k in range(1, 10)]
    assert tiled.metadata["precision"] == "int8" and tiled.metadata["tile"] == 32
    np.testing.assert_allclose(tiled.jnd, whole.jnd, atol=1e-3)


@pytest.mark.slow
def test_cancel_stops_inside_a_tile(tmp_path):
    """A large single tile of the real-size network: cancelled within about a second."""
    model = make_tiny(channels=128, recursions=25)
    img = np.zeros((64, 64, 3), np.uint8)
    predict(model, img, device="cpu", precision="int8")  # quantised and compiled: only the run is timed
    big = np.random.default_rng(0).integers(0, 256, (512, 512, 3), np.uint8)
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        predict(
            model, big, device="cpu", precision="int8", tile=512, should_stop=lambda: time.perf_counter() - t0 > 0.5
        )
    took = time.perf_counter() - t0
    print(f"cancelled after {took:.2f} s (a whole run takes about 15 s on two cores)")
    assert took < 3


def test_bad_requests_are_one_line_errors(capsys, tmp_path, monkeypatch):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    out = tmp_path / "out"
    # int8 is for inference only: training refuses it before any work
    weights = tmp_path / "w.safetensors"
    assert main(["finetune", "--pairs", str(tmp_path), "--out", str(weights), "--precision", "int8"]) == 2
    assert "--precision: invalid choice: 'int8'" in capsys.readouterr().err
    assert not weights.exists()
    # without the extra: the install command, exit 2, nothing written
    monkeypatch.setattr(int8, "available", lambda: False)
    assert main(["predict", str(img), "--out", str(out), "--precision", "int8", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--precision int8" in err and 'pip install "napari-resjnd[int8]"' in err
    assert not out.exists()
    with pytest.raises(ValueError, match="int8 is for inference"):
        resolve_precision("int8", torch.device("cpu"))


def test_cli_says_when_it_quantises_and_only_then(tmp_path, monkeypatch, capsys):
    from napari_resjnd.core.weights import save_weights

    monkeypatch.setenv(int8.CACHE_ENV, str(tmp_path / "int8"))
    weights = save_weights(make_tiny(channels=8, recursions=6, seed=7), tmp_path / "tiny.safetensors")
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)).save(img)
    args = ["predict", str(img), "--weights", str(weights), "--precision", "int8", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr()
    assert "int8: quantising these weights once" in first.err and str(tmp_path / "int8") in first.err
    assert "cpu, int8)" in first.out + first.err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "quantising" not in capsys.readouterr().err
    assert (tmp_path / "b" / "a_jnd.tif").is_file()
