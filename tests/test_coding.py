"""JND-guided coding, Qt-free: codecs, bit rates, pre-processing bounds, metrics, BD-rate, sweeps."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from skimage import data as skdata

from napari_resjnd.core import codecs as coding
from napari_resjnd.core import metrics
from napari_resjnd.core.coding import bdrate, sweep
from napari_resjnd.core.coding.prefilter import FILTERS, as_rgb8, guided_names, guided_pictures, jnd_smooth
from napari_resjnd.core.errors import Cancelled, ResJNDError
from napari_resjnd.core.events import Encoded, drive
from napari_resjnd.core.maps import MapResult
from napari_resjnd.core.metrics import psnr
from napari_resjnd.core.zoo import classic_jnd


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skdata.astronaut()[40:136, 180:276].copy()  # 96 x 96: face and texture


def _runs(name: str) -> bool:
    try:
        coding.check_available(name)
    except ResJNDError:
        return False
    return True


@pytest.mark.parametrize("name", list(coding.CODECS))
def test_each_codec_round_trips_and_bpp_counts_its_bytes(name, photo):
    if not _runs(name):
        pytest.skip(f"{name}: its library is not installed here")
    c = coding.codec(name)
    low, high = c.encode(photo, 20), c.encode(photo, 90)
    for stream in (low, high):
        back = c.decode(stream)
        assert back.shape == photo.shape and back.dtype == np.uint8
    assert len(low) < len(high)
    assert psnr(photo, c.decode(high)) > 30 > psnr(photo, c.decode(low)) - 10
    assert coding.bits_per_pixel(high, photo.shape) == 8 * len(high) / (96 * 96)
    point = sweep.encode_point(photo, photo, "none", name, 90, metrics=("psnr",))
    assert point.size == len(high) and point.bpp == 8 * len(high) / (96 * 96)
    assert name in c.version().lower() or c.package.split("-")[0] in c.version().lower()


def test_encode_refuses_bad_quality_and_pixels(photo):
    jpeg = coding.codec("jpeg")
    with pytest.raises(ResJNDError, match="quality 0"):
        jpeg.encode(photo, 0)
    with pytest.raises(ResJNDError, match="uint8"):
        jpeg.encode(photo.astype(np.float32), 50)


@pytest.mark.parametrize(
    ("name", "module", "package"), [("heic", "pillow_heif", "pillow-heif"), ("jxl", "imagecodecs", "imagecodecs")]
)
def test_a_missing_codec_library_names_the_pip_command(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    coding._available.cache_clear()
    try:
        with pytest.raises(ResJNDError, match=f"pip install {package}") as e:
            coding.codec(name)
        assert "\n" not in str(e.value)
        assert name not in coding.available_codecs() and "jpeg" in coding.available_codecs()
    finally:
        coding._available.cache_clear()


def test_missing_ssimulacra2_names_the_pip_command(monkeypatch, photo):
    monkeypatch.setitem(sys.modules, "ssimulacra2", None)
    with pytest.raises(ResJNDError, match="pip install ssimulacra2"):
        metrics.ssimulacra2(photo, photo)


def test_names_and_qualities_are_checked():
    assert coding.codec_names("all") == list(coding.CODECS)
    with pytest.raises(ResJNDError, match="unknown codec 'bpg'"):
        coding.codec_names("jpeg,bpg")
    assert coding.parse_qualities("10:50:20") == (10, 30, 50)
    assert coding.parse_qualities("60, 20,40") == (20, 40, 60)
    for bad in ("50", "a:b", "10:90:0", "x"):
        with pytest.raises(ResJNDError, match="--quality"):
            coding.parse_qualities(bad)
    assert guided_names("namm,resjnd") == ["yang2005", "resjnd"]
    with pytest.raises(ResJNDError, match="unknown JND model 'nope'"):
        guided_names("nope")


# ---- pre-processing --------------------------------------------------------
@pytest.mark.parametrize("filter_name", list(FILTERS))
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 3.0])
def test_smoothing_stays_within_lambda_jnd(photo, filter_name, lam):
    jnd = classic_jnd("yang2005", photo)
    out = jnd_smooth(photo, jnd, lam=lam, filter_name=filter_name, sigma=2.0)
    change = np.abs(out.astype(np.float64) - photo)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert (change <= lam * jnd[..., None] + 1e-9).all()
    if lam == 0:
        assert (out == photo).all()
    else:  # it does smooth: the picture changes, and loses high-frequency energy
        assert change.mean() > 0.3
        assert np.abs(np.diff(out.astype(float), axis=1)).mean() < np.abs(np.diff(photo.astype(float), axis=1)).mean()


def test_smoothing_grey_image_and_bad_maps():
    grey = skdata.camera()[:64, :64]
    out = jnd_smooth(grey, np.full((64, 64), 2.0))
    assert out.shape == (64, 64, 3) and (np.abs(out.astype(int) - grey[..., None]) <= 2).all()
    with pytest.raises(ResJNDError, match="JND map is"):
        jnd_smooth(grey, np.ones((8, 8)))
    with pytest.raises(ResJNDError, match="not negative"):
        jnd_smooth(grey, -np.ones((64, 64)))
    with pytest.raises(ResJNDError, match="unknown filter"):
        jnd_smooth(grey, np.ones((64, 64)), filter_name="bilateral")


def test_guided_pictures_substitute_the_cpl_image(photo):
    cpl = np.clip(photo / 255.0 + 0.01, 0, 1)
    maps = {"resjnd": MapResult(np.ones((96, 96)), cpl)}
    pics = guided_pictures(photo, ["resjnd", "resjnd-smooth"], maps=maps)
    assert list(pics) == ["none", "resjnd", "resjnd-smooth"]
    assert (pics["none"] == photo).all()
    assert (pics["resjnd"] == np.rint(cpl * 255)).all()
    assert (np.abs(pics["resjnd-smooth"].astype(int) - photo) <= 1).all()


# ---- metrics -------------------------------------------------------------
def test_ssimulacra2_known_values():
    """100 for identical images (the tool's definition); on a whole photo, JPEG scores fall with
    the quality and land in libjxl's documented bands (50: medium, 70: high, 90: visually lossless):
    libjpeg-turbo quality 90 scores in the 80s, quality 50 in the 60s-70s."""
    photo = skdata.astronaut()
    assert metrics.ssimulacra2(photo, photo) == pytest.approx(100.0)
    jpeg = coding.codec("jpeg")
    q50, q90 = (metrics.ssimulacra2(photo, jpeg.decode(jpeg.encode(photo, q))) for q in (50, 90))
    assert 60 < q50 < 75 < q90 < 90


def test_points_are_scored_against_the_original_not_the_picture_coded(photo):
    picture = jnd_smooth(photo, np.full((96, 96), 6.0))
    point = sweep.encode_point(photo, picture, "x", "jpeg", 95)
    decoded = coding.codec("jpeg").decode(coding.codec("jpeg").encode(picture, 95))
    assert point.metrics["psnr"] == pytest.approx(psnr(photo.astype(float), decoded.astype(float)))
    assert point.metrics["psnr"] < psnr(picture.astype(float), decoded.astype(float))
    assert math.isnan(point.metrics["ms_ssim"])  # 96 px: MS-SSIM needs a side above 160
    assert set(point.seconds) >= {"encode", "decode", *sweep.METRICS}


# ---- BD-rate -------------------------------------------------------------
RATES = [0.3, 0.6, 1.1, 2.0, 3.5]
SCORES = [28.0, 31.0, 34.5, 37.0, 40.0]


@pytest.mark.parametrize("method", list(bdrate.INTERPOLATIONS))
def test_bd_rate_of_identical_curves_is_zero_and_of_ninety_percent_bits_is_minus_ten(method):
    assert bdrate.bd_rate(RATES, SCORES, RATES, SCORES, method).percent == pytest.approx(0.0, abs=1e-9)
    fewer = [0.9 * r for r in RATES]
    assert bdrate.bd_rate(RATES, SCORES, fewer, SCORES, method).percent == pytest.approx(-10.0, abs=1e-9)
    more = [1.25 * r for r in RATES]
    assert bdrate.bd_rate(RATES, SCORES, more, SCORES, method).percent == pytest.approx(25.0, abs=1e-9)


def test_bd_rate_lower_is_better_metric_and_partial_overlap():
    gmsd = [0.05, 0.03, 0.02, 0.01, 0.005]
    assert bdrate.bd_rate(RATES, gmsd, [0.9 * r for r in RATES], gmsd).percent == pytest.approx(-10.0)
    shifted = bdrate.bd_rate(RATES, SCORES, RATES, [s + 6 for s in SCORES])
    assert shifted.percent < 0 and 0 < shifted.overlap < 1


def test_bd_rate_without_overlap_is_nan_with_a_reason():
    bd = bdrate.bd_rate(RATES, SCORES, RATES, [s + 20 for s in SCORES])
    assert math.isnan(bd.percent) and bd.overlap == 0 and "do not overlap" in bd.note
    flat = bdrate.bd_rate(RATES, SCORES, RATES, [30.0, 30.0, 31.0, 32.0, 33.0])
    assert math.isnan(flat.percent) and "same score" in flat.note
    few = bdrate.bd_rate(RATES, SCORES, RATES[:1], SCORES[:1])
    assert math.isnan(few.percent) and "fewer than 2" in few.note
    assert "4 points" in bdrate.bd_rate(RATES[:3], SCORES[:3], RATES[:3], SCORES[:3], "cubic").note


def test_mean_rows_average_the_images_that_have_a_value():
    rows = [{"codec": "jpeg", "jnd": "a", "metric": "psnr", "bd_rate_percent": v} for v in (-10.0, 20.0, math.nan)]
    (mean,) = bdrate.mean_rows(rows)
    assert mean["bd_rate_percent"] == pytest.approx(5.0) and mean["images"] == 2 and "1 of 3" in mean["note"]


# ---- sweeps ----------------------------------------------------------------
def test_sweep_yields_progress_and_bd_rows(photo):
    pics = guided_pictures(photo, ["yang2005"], maps={"yang2005": MapResult(classic_jnd("yang2005", photo))})
    events: list = []
    points = drive(
        sweep.iter_sweep(photo, pics, ["jpeg"], {"jpeg": [30, 60, 90]}, metrics=("psnr", "ssimulacra2")),
        events.append,
    )
    encoded = [e for e in events if isinstance(e, Encoded)]
    assert [e.done for e in encoded] == [1, 2, 3, 4, 5, 6] and encoded[-1].total == 6
    assert [(p.jnd, p.quality) for p in points] == [(j, q) for j in ("none", "yang2005") for q in (30, 60, 90)]
    rows = bdrate.bd_rows(points, metrics=("psnr", "ssimulacra2"))
    assert [(r["jnd"], r["metric"]) for r in rows] == [("yang2005", "psnr"), ("yang2005", "ssimulacra2")]
    assert bdrate.quality_for_rate([p for p in points if p.jnd == "none"], points[1].bpp) == 60
    assert bdrate.rate_at(points[:3], 60) == pytest.approx(points[1].bpp)


def test_sweep_stops_when_asked(photo):
    with pytest.raises(Cancelled):
        drive(sweep.iter_sweep(photo, {"none": photo}, ["jpeg"], {"jpeg": [30, 60]}, should_stop=lambda: True))


@pytest.mark.slow
def test_parallel_sweep_equals_the_serial_one(photo):
    pics = {"none": photo, "flat": as_rgb8(np.full((96, 96, 3), 128, np.uint8))}
    kw = {"metrics": ("psnr", "gmsd")}
    serial = drive(sweep.iter_sweep(photo, pics, ["jpeg", "webp"], {"jpeg": [40, 80], "webp": [40, 80]}, **kw))
    parallel = drive(
        sweep.iter_sweep(photo, pics, ["jpeg", "webp"], {"jpeg": [40, 80], "webp": [40, 80]}, workers=2, **kw)
    )
    assert [(p.jnd, p.codec, p.quality, p.size, p.metrics) for p in serial] == [
        (p.jnd, p.codec, p.quality, p.size, p.metrics) for p in parallel
    ]


def test_cli_refuses_to_start_without_bjontegaard(monkeypatch, tmp_path, capsys):
    from napari_resjnd.cli import main

    monkeypatch.setitem(sys.modules, "bjontegaard", None)
    assert main(["compress", "x.png", "--out", str(tmp_path / "o")]) == 2
    assert "pip install bjontegaard" in capsys.readouterr().err
