"""The visibility model: a threshold per map family, viewing conditions, detection
pooling (neighbourhood, robust maximum), strict numbers, calibration files."""

import json
import math

import numpy as np
import pytest
from skimage import data as skdata

from napari_resjnd.core import maps
from napari_resjnd.core.errors import ResJNDError
from napari_resjnd.core.noise import sign_field
from napari_resjnd.core.visibility import calibration as cal_file
from napari_resjnd.core.visibility.detection import VisibilityParams, visibility
from napari_resjnd.core.visibility.thresholds import cpl_tolerance, luminance_floor
from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING, ViewingConditions
from napari_resjnd.core.zoo import classic_jnd
from napari_resjnd.core.zoo._common import block_dct, dct_matrix, from_blocks, pad8, to_blocks

CAT = skdata.chelsea()[60:188, 120:248]
WIDE_FIELD = ViewingConditions(fixed_ppd=4.0)


def test_the_default_viewing_conditions_are_an_office_display_at_37_8_ppd():
    v = DEFAULT_VIEWING
    assert (v.distance_cm, v.diagonal_in, v.resolution, v.peak_luminance) == (60.0, 24.0, (1920, 1080), 200.0)
    assert v.ppd == pytest.approx(37.84, abs=0.01)  # ColorVideoVDP's standard_fhd: 37.84
    assert ViewingConditions(distance_cm=120).ppd == pytest.approx(2 * v.ppd, rel=1e-3)
    assert ViewingConditions(fixed_ppd=60).ppd == 60
    assert ViewingConditions.from_dict(v.as_dict()) == v


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"distance_cm": 0}, "viewing distance"),
        ({"distance_cm": math.inf}, "viewing distance"),
        ({"diagonal_in": -24}, "display size"),
        ({"peak_luminance": math.nan}, "peak luminance"),
        ({"fixed_ppd": 0.0}, "pixels per degree"),
        ({"resolution": (1920, 0)}, "display resolution"),
    ],
)
def test_invalid_viewing_conditions_are_one_line_naming_the_parameter(kw, named):
    with pytest.raises(ResJNDError, match=named) as e:
        ViewingConditions(**kw)
    assert "\n" not in str(e.value)


def test_p_detect_does_not_depend_on_the_undistorted_surround():
    """The same artefact in a crop and in a crop four times larger: p_detect stays,
    the image-wide mean (the quality score) falls."""
    big = np.full((512, 512), 120, np.uint8)
    distorted = big.copy()
    patch = (slice(240, 272), slice(240, 272))
    distorted[patch] = np.clip(distorted[patch] + 8 * sign_field((32, 32), 3), 0, 255).astype(np.uint8)
    jnd = np.full(big.shape, 3.0)
    crop = (slice(192, 320), slice(192, 320))
    whole = visibility(big, distorted, jnd)
    part = visibility(big[crop], distorted[crop], jnd[crop])
    assert whole.p_detect == pytest.approx(part.p_detect, rel=0.02) and 0.05 < whole.p_detect < 0.999
    assert whole.mean_visibility < part.mean_visibility / 3
    x, y = whole.peak_xy
    assert abs(x - 256) < 40 and abs(y - 256) < 40  # the neighbourhood behind p_detect is the artefact's


def test_a_dct_map_is_used_in_its_own_domain():
    """Every coefficient of every block at exactly its threshold: each block's ratio is 1,
    so over a wide field p_detect is 1 - 1/e; the same error divided per pixel is not."""
    y = CAT.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    t = to_blocks(pad8(classic_jnd("zhang2005", y.astype(np.uint8)).astype(np.float64)))
    signs = np.sign(np.random.default_rng(0).standard_normal(t.shape))
    d = dct_matrix(8)
    error = from_blocks(d.T @ (signs * t) @ d)  # the inverse block DCT
    assert np.allclose(block_dct(error), signs * t)
    pristine = np.full((128, 128), 128.0) / 255
    distorted = (128.0 + error) / 255
    jnd = from_blocks(t)
    dct = visibility(pristine, distorted, jnd, domain="dct", viewing=WIDE_FIELD)
    assert dct.p_detect == pytest.approx(1 - math.exp(-1), abs=1e-3)
    assert visibility(pristine, distorted, jnd, domain="pixel", viewing=WIDE_FIELD).p_detect > 0.99
    assert dct.summary()["domain"] == "dct" and "DCTune" in dct.summary()["threshold_rule"]


def test_dct_thresholds_follow_the_viewing_distance():
    """Zhang 2005's CSF thresholds are computed at its authors' 33.6 pixels per degree:
    farther away, the high coefficients are finer in degrees and less visible."""
    scale = maps.source("zhang2005").viewing_scale
    assert scale is not None and maps.source("chou1995").viewing_scale is None
    assert np.allclose(scale(1 / 0.0298), 1.0)
    assert scale(75.4)[7, 7] > 10 and scale(75.4)[0, 1] < 1
    noisy = np.clip(CAT + 6.0 * sign_field(CAT.shape[:2], 2)[..., None], 0, 255).astype(np.uint8)
    jnd = classic_jnd("zhang2005", CAT)
    near = visibility(CAT, noisy, jnd, model="zhang2005", viewing=ViewingConditions(distance_cm=40))
    far = visibility(CAT, noisy, jnd, model="zhang2005", viewing=ViewingConditions(distance_cm=120))
    assert far.detection_ratio < near.detection_ratio


def test_a_cpl_residual_becomes_a_tolerance_with_a_luminance_adaptation_floor():
    """In a flat region the CPL residual is near 0, but a one-grey-level change is not
    seen there: the tolerance is at least the luminance-adaptation threshold."""
    flat = np.full((128, 128), 128, np.uint8)
    plus_one = flat + 1
    residual = np.zeros(flat.shape, np.float32)
    assert visibility(flat, plus_one, residual, model="resjnd").p_detect < 0.05
    assert visibility(flat, plus_one, residual, domain="pixel").p_detect > 0.5  # the residual as a pixel map
    floor = luminance_floor(flat.astype(np.float64), DEFAULT_VIEWING)
    assert 3.0 < floor[64, 64] < 4.5  # Chou & Li give 3 at mid-grey
    white = luminance_floor(np.full((16, 16), 255.0), DEFAULT_VIEWING)[8, 8]
    assert 5.5 < white < 7.5  # and 6 at white
    dim = luminance_floor(flat.astype(np.float64), ViewingConditions(peak_luminance=50))
    assert dim[64, 64] > floor[64, 64]  # a dimmer display hides more grey levels
    textured = cpl_tolerance(flat.astype(np.float64), np.full(flat.shape, 20.0), DEFAULT_VIEWING)
    assert np.all(textured > 20)  # NAMM: the residual's masking and the floor add, minus their overlap


def test_every_number_is_finite_whatever_alpha_and_beta():
    """--alpha 1e-300 or --slope 1e6 wrote "pooled_ratio": Infinity (not strict JSON)."""
    jnd = classic_jnd("chou1995", CAT)
    noisy = np.clip(CAT.astype(int) + 9, 0, 255).astype(np.uint8)
    for params in (VisibilityParams(alpha=1e-300), VisibilityParams(beta=1e6), VisibilityParams(alpha=1e300)):
        v = visibility(CAT, noisy, jnd, params)
        text = json.dumps(v.summary(), allow_nan=False)
        assert "Infinity" not in text and "NaN" not in text
        assert 0 <= v.p_detect <= 1 and math.isfinite(v.detection_ratio) and math.isfinite(v.pooled_ratio)


def test_an_unknown_domain_or_bad_parameters_are_refused():
    jnd = classic_jnd("chou1995", CAT)
    with pytest.raises(ResJNDError, match="unknown map domain"):
        visibility(CAT, CAT, jnd, domain="fourier")
    with pytest.raises(ResJNDError, match="neighbourhood_deg"):
        visibility(CAT, CAT, jnd, VisibilityParams(neighbourhood_deg=0))


def _calibration(model="yang2005", procedure="flicker", viewing=DEFAULT_VIEWING):
    return cal_file.Calibration(model, procedure, viewing, 1.7, 3.0, True, -40.0, 120, ("ann",))


def test_a_calibration_file_is_used_only_where_it_was_measured(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(cal_file.dumps([_calibration(), _calibration(procedure="2afc-side-by-side")]))
    cal = cal_file.select(path, "yang2005", DEFAULT_VIEWING, "flicker")
    assert (cal.alpha, cal.beta) == (1.7, 3.0) and cal.params().alpha == 1.7
    with pytest.raises(ResJNDError, match="for yang2005, not for resjnd"):
        cal_file.select(path, "resjnd", DEFAULT_VIEWING, "flicker")
    with pytest.raises(ResJNDError, match="several procedures"):
        cal_file.select(path, "yang2005", DEFAULT_VIEWING)
    with pytest.raises(ResJNDError, match=r"procedure .*not 2afc-intervals"):
        cal_file.select(path, "yang2005", DEFAULT_VIEWING, "2afc-intervals")
    with pytest.raises(ResJNDError, match=r"pixels per degree 75\.6"):
        cal_file.select(path, "yang2005", ViewingConditions(distance_cm=120), "flicker")
    with pytest.raises(ResJNDError, match="peak luminance"):
        cal_file.select(path, "yang2005", ViewingConditions(peak_luminance=400), "flicker")
    (tmp_path / "bad.json").write_text(json.dumps({"format": cal_file.FORMAT, "calibrations": [{"model": "x"}]}))
    with pytest.raises(ResJNDError, match=r"bad\.json"):
        cal_file.load(tmp_path / "bad.json")
