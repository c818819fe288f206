"""Evaluation: classic models, noise at a target PSNR, metrics, statistics, CLI."""

import csv

import numpy as np
import pytest
from conftest import make_tiny
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core import metrics, noise
from napari_resjnd.core.images import luminance
from napari_resjnd.core.research import evaluate as ev
from napari_resjnd.core.weights import save_weights
from napari_resjnd.core.zoo import MODELS as CLASSIC_MODELS
from napari_resjnd.core.zoo import pixel
from napari_resjnd.core.zoo import wu2017 as wu


@pytest.mark.parametrize("grey", [0, 60, 127, 200, 255])
def test_flat_fields_give_luminance_adaptation(grey):
    img = np.full((32, 32), grey, np.uint8)
    bg = float(grey)  # B sums to 32: a flat field is its own background
    tl = 17 * (1 - np.sqrt(bg / 127)) + 3 if bg <= 127 else 3 / 128 * (bg - 127) + 3
    # flat: no gradient, no texture -> Chou & Li = max(0.5 - 0.01 bg, T_l) = T_l
    np.testing.assert_allclose(pixel.chou1995(img), max(tl, 0.5 - 0.01 * bg), rtol=1e-5)
    tt = 0.5 - 0.01 * bg
    np.testing.assert_allclose(pixel.yang2005(img), tl + tt - 0.3 * min(tl, tt), rtol=1e-5)
    # Wu 2017: no contrast, no pattern (VM = 0), and its dark backgrounds are lifted first
    lifted = bg if bg > 127 else np.floor(32 + bg * 95 / 127 + 0.5)
    tl_wu = 17 * (1 - np.sqrt(lifted / 127)) + 3 if lifted <= 127 else 3 / 128 * (lifted - 127) + 3
    np.testing.assert_allclose(wu.wu2017(img), 0.7 * tl_wu, rtol=1e-5)


def test_background_and_gradient_operators_on_a_known_edge():
    y = np.zeros((20, 20))
    y[10:] = 100.0  # horizontal edge between rows 9 and 10
    bg = pixel.background(y)
    assert bg[2, 5] == 0 and bg[17, 5] == pytest.approx(100)
    mg = pixel.max_gradient(y)
    # G1 across the edge: rows 1 and 3 of the kernel sum to +-16 -> |(-16) * 100| / 16
    assert mg[10, 10] == pytest.approx(100.0) and mg[9, 10] == pytest.approx(100.0)
    assert mg[2, 10] == 0
    assert pixel.luminance_adaptation(np.array([0.0, 127.0, 255.0])) == pytest.approx([20.0, 3.0, 6.0])


def test_edges_raise_chou_li_and_namm_protects_them():
    y = np.zeros((40, 40), np.uint8)
    y[:, 20:] = 200
    c, n = pixel.chou1995(y), pixel.yang2005(y)
    assert c[20, 20] > c[20, 5]
    assert n[20, 20] < c[20, 20]  # NAMM lowers the masking at edges
    w = pixel.edge_protection(y.astype(float))
    assert w[20, 20] < 0.2 and w[20, 2] > 0.9


def test_pattern_complexity_counts_orientations():
    flat = np.full((20, 20), 100.0)
    np.testing.assert_allclose(wu.pattern_complexity(flat), 1.0)  # smooth pixels count as one pattern
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (30, 30))
    assert wu.pattern_complexity(noise)[5:-5, 5:-5].mean() > 4


def test_bisection_hits_the_target_psnr():
    img = skdata.chelsea()[:120, :160].astype(np.float64)
    sign = noise.sign_field(img.shape[:2], 0)
    jnd = pixel.chou1995(img.astype(np.uint8))
    for target in (22.0, 26.0, 30.0, 40.0):
        noisy, beta, _p = noise.noise_at_psnr(img, jnd, sign, target)
        assert abs(metrics.psnr(img, noisy) - target) < 0.01 and beta > 0
        assert noisy.min() >= 0 and noisy.max() <= 255


def test_shuffling_preserves_the_histogram():
    j = pixel.yang2005(skdata.coffee()[:64, :64])
    s = noise.shuffled(j, 3)
    assert np.array_equal(np.sort(j.ravel()), np.sort(s.ravel())) and not np.array_equal(j, s)


def test_metrics_are_perfect_for_identical_images_and_ordered():
    y = luminance(skdata.astronaut()[:200, :200])
    assert metrics.ssim(y, y) == pytest.approx(1) and metrics.ms_ssim(y, y) == pytest.approx(1, abs=1e-5)
    assert metrics.vifp(y, y) == pytest.approx(1) and metrics.gmsd(y, y) == pytest.approx(0)
    rng = np.random.default_rng(0)
    mild, strong = y + rng.normal(0, 3, y.shape), y + rng.normal(0, 15, y.shape)
    assert metrics.ssim(y, mild) > metrics.ssim(y, strong) and metrics.vifp(y, mild) > metrics.vifp(y, strong)
    assert metrics.gmsd(y, mild) < metrics.gmsd(y, strong) and metrics.ms_ssim(y, mild) > metrics.ms_ssim(y, strong)
    assert np.isnan(metrics.ms_ssim(y[:100, :100], y[:100, :100]))  # too small for 5 scales


def test_pspnr_ignores_error_below_the_map():
    ref = np.full((10, 10, 3), 100.0)
    dist = ref + 2.0
    assert metrics.pspnr(ref, dist, np.full((10, 10), 3.0)) == float("inf")
    assert metrics.pspnr(ref, dist, np.full((10, 10), 1.0)) == pytest.approx(10 * np.log10(255**2 / 1.0))


def test_paired_stats_direction_and_fields():
    rows = []
    for i in range(8):
        rows.append(
            {
                "image": f"{i}",
                "jnd": "resjnd",
                "target_psnr": 26.0,
                "psnr": 26,
                "ssim": 0.8 + 0.01 * i,
                "ms_ssim": 0.9,
                "vifp": 0.5,
                "gmsd": 0.05,
                "pspnr": 30,
            }
        )
        rows.append(
            {
                "image": f"{i}",
                "jnd": "chou",
                "target_psnr": 26.0,
                "psnr": 26,
                "ssim": 0.7,
                "ms_ssim": 0.9,
                "vifp": 0.6,
                "gmsd": 0.07,
                "pspnr": 30,
            }
        )
    st = {(r["metric"]): r for r in ev.paired_stats(rows)}
    assert st["ssim"]["win_rate"] == 1 and st["ssim"]["mean_diff"] > 0 and st["ssim"]["wilcoxon_p"] < 0.01
    assert st["ssim"]["ci_low"] > 0
    assert st["vifp"]["win_rate"] == 0 and st["gmsd"]["mean_diff"] == pytest.approx(0.02)  # lower GMSD wins
    assert "| 26 | ssim | chou | 8 |" in ev.markdown_summary(list(st.values()))


@pytest.mark.slow
def test_cli_evaluate_writes_csv_and_summary(tmp_path, capsys):
    paths = []
    for key in ("astronaut", "coffee"):
        p = tmp_path / f"{key}.png"
        Image.fromarray(getattr(skdata, key)()[:176, :176]).save(p)
        paths.append(str(p))
    w = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    out = tmp_path / "res.csv"
    rc = main(
        [
            "evaluate",
            *paths,
            "--psnr",
            "26",
            "--psnr",
            "30",
            "--out",
            str(out),
            "--weights",
            str(w),
            "--device",
            "cpu",
            "--plot",
            str(tmp_path / "q.png"),
            "-q",
        ]
    )
    assert rc == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 2 * 2 * (1 + len(CLASSIC_MODELS) + 2)
    assert list(rows[0])[:6] == ["image", "jnd", "target_psnr", "beta", "psnr", "ssim"]
    assert {"ms_ssim", "vifp", "gmsd", "pspnr"} <= set(rows[0])
    assert {r["jnd"] for r in rows} == {
        "resjnd",
        *CLASSIC_MODELS,
        "uniform",
        "shuffled",
    }  # --jnd all, uniform, shuffled
    assert all(abs(float(r["psnr"]) - float(r["target_psnr"])) < 0.01 for r in rows)
    text = capsys.readouterr().out
    assert "| target PSNR | metric | resjnd vs |" in text and "| 30 | gmsd | uniform |" in text
    assert (tmp_path / "q.png").stat().st_size > 1000


def test_cli_evaluate_unknown_map(tmp_path, capsys):
    p = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8) + 100).save(p)
    assert main(["evaluate", str(p), "--jnd", "chou,bogus", "--out", str(tmp_path / "r.csv")]) == 2
    assert "bogus" in capsys.readouterr().err


def test_a_map_that_cannot_reach_the_target_is_named_or_left_out():
    img = skdata.coffee()[:48, :48]
    maps = {"tiny": np.full(img.shape[:2], 1e-12, np.float32), "uniform": np.ones(img.shape[:2], np.float32)}
    with pytest.raises(ValueError, match=r"JND map 'tiny': cannot bring the PSNR down to 30\.0 dB"):
        ev.evaluate_image(img, maps, [30.0])
    skipped = []
    results = ev.evaluate_image(img, maps, [30.0], skipped=skipped)
    assert [r.jnd for r in results] == ["uniform"] and [(n, t) for n, t, _ in skipped] == [("tiny", 30.0)]
