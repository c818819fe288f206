"""Visibility prediction: the per-pixel map, p_detect, and `resjnd visibility map`."""

import io
import json
import math
from itertools import pairwise

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core.errors import ResJNDError
from napari_resjnd.core.noise import inject, sign_field
from napari_resjnd.core.visibility.detection import VisibilityParams, visibility
from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING, ViewingConditions
from napari_resjnd.core.zoo import classic_jnd

CAT = skdata.chelsea()[60:188, 120:248]  # 128 x 128 RGB uint8


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def test_an_undistorted_image_is_invisible():
    jnd = classic_jnd("yang2005", CAT)
    v = visibility(CAT, CAT.copy(), jnd)
    assert v.p_detect == 0.0 and float(v.probability.max()) == 0.0
    assert v.probability.shape == CAT.shape[:2] and v.probability.dtype == np.float32


#: A field many neighbourhoods wide: CAT (128 px) seen at 8 pixels per degree is 16 degrees across.
WIDE_FIELD = ViewingConditions(fixed_ppd=8.0)


def test_p_detect_grows_monotonically_with_jnd_noise_and_is_one_minus_1_over_e_at_the_jnd():
    """The maps' calibration: JND-shaped noise at scale 1 over a field much larger than
    the neighbourhood is seen with probability 1 - 1/e."""
    jnd = classic_jnd("yang2005", CAT).astype(np.float64)
    grey = CAT.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # grey: no clipping per channel
    grey = np.clip(grey, 40, 215)  # room for the noise: no clipping at 255 or 0
    jnd_grey = classic_jnd("yang2005", grey.astype(np.uint8))
    sign = sign_field(grey.shape, 0)
    p = []
    for beta in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        noisy = inject(grey, jnd_grey, sign, beta)
        p.append(visibility(grey / 255, noisy / 255, jnd_grey, viewing=WIDE_FIELD).p_detect)
    assert p[0] == 0.0 and all(a < b for a, b in pairwise(p)), p
    assert p[4] == pytest.approx(1 - math.exp(-1), abs=0.01)  # noise at scale 1 = the map's JND
    assert p[-1] > 0.999
    assert jnd.shape == grey.shape


def test_a_small_image_is_less_visible_than_a_wide_field_spatial_summation():
    """Outside the image the display shows no error: at the default 37.8 pixels per
    degree the 128-px crop (3.4 degrees) fills less than its neighbourhood."""
    grey = np.full((128, 128), 128, np.uint8)
    noisy = (grey + 3 * sign_field(grey.shape, 1)).astype(np.uint8)
    jnd = np.full(grey.shape, 3.0)
    wide = visibility(grey, noisy, jnd, viewing=WIDE_FIELD).p_detect
    small = visibility(grey, noisy, jnd).p_detect
    assert wide == pytest.approx(1 - math.exp(-1), abs=1e-6) and 0.3 < small < wide


def test_p_detect_grows_as_jpeg_quality_falls():
    jnd = classic_jnd("wu2017", CAT)
    p = [visibility(CAT, jpeg(CAT, q), jnd, model="wu2017").p_detect for q in (95, 70, 40, 10)]
    assert all(a < b for a, b in pairwise(p)), p
    assert 0 < p[0] < 0.5 < p[-1]


def test_parameters_are_named_and_checked():
    v = visibility(CAT, jpeg(CAT, 50), classic_jnd("chou1995", CAT), VisibilityParams(alpha=2.0, beta=2.0))
    params = v.summary()["params"]
    assert (params["alpha"], params["beta"], params["jnd_floor"]) == (2.0, 2.0, 0.5)
    assert params["neighbourhood_deg"] == 1.0 and params["peak_area_deg2"] == 1.0
    assert v.summary()["viewing"]["ppd"] == pytest.approx(37.84, abs=0.01)
    with pytest.raises(ResJNDError, match="beta"):
        visibility(CAT, CAT, classic_jnd("chou1995", CAT), VisibilityParams(beta=0))
    with pytest.raises(ResJNDError, match="distorted image is 64 x 128"):
        visibility(CAT, CAT[:, :64], classic_jnd("chou1995", CAT))


def test_cli_visibility_map_writes_the_map_and_p_detect(tmp_path, capsys):
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    Image.fromarray(jpeg(CAT, 30)).save(tmp_path / "cat_q30.png")
    out = tmp_path / "out"
    args = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "cat_q30.png"), "--jnd", "yang2005"]
    assert main([*args, "--out", str(out)]) == 0
    m = tifffile.imread(out / "cat_q30_visibility.tif")
    info = json.loads((out / "cat_q30_visibility.json").read_text())
    assert m.shape == CAT.shape[:2] and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    expected = visibility(CAT, jpeg(CAT, 30), classic_jnd("yang2005", CAT))
    assert info["p_detect"] == pytest.approx(expected.p_detect) and info["model"] == "yang2005"
    assert info["params"]["beta"] == 3.5 and "p_detect" in capsys.readouterr().out
    assert info["viewing"] == DEFAULT_VIEWING.as_dict() and info["domain"] == "pixel"
    # a rerun into the same folder replaces its own map and says so
    assert main([*args, "--out", str(out), "--jnd", "chou1995"]) == 0
    assert "replacing the earlier cat_q30_visibility.tif and cat_q30_visibility.json" in capsys.readouterr().err
    assert json.loads((out / "cat_q30_visibility.json").read_text())["model"] == "chou1995"


def test_cli_visibility_map_refuses_bad_input_in_one_line(tmp_path, capsys):
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    Image.fromarray(CAT[:64]).save(tmp_path / "small.png")
    out = str(tmp_path / "out")
    assert (
        main(
            [
                "visibility",
                "map",
                str(tmp_path / "cat.png"),
                str(tmp_path / "small.png"),
                "--out",
                out,
                "--jnd",
                "chou1995",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "small.png" in err and "128 x 64" in err and len(err.strip().splitlines()) == 1
    assert "mean_visibility" not in err
    assert (
        main(["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "cat.png"), "--out", out, "--jnd", "nope"])
        == 2
    )
    assert "--jnd nope" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_cli_visibility_map_with_the_real_network(tmp_path, official_cache):
    crop = CAT[:64, :64]
    Image.fromarray(crop).save(tmp_path / "p.png")
    Image.fromarray(jpeg(crop, 20)).save(tmp_path / "d.png")
    args = ["visibility", "map", str(tmp_path / "p.png"), str(tmp_path / "d.png"), "--jnd", "resjnd"]
    assert main([*args, "--precision", "fp32", "--out", str(tmp_path / "o")]) == 0
    info = json.loads((tmp_path / "o" / "d_visibility.json").read_text())
    assert 0 < info["p_detect"] <= 1 and info["weights"] == "resjnd-cplset"


def test_a_few_near_zero_jnd_values_do_not_decide_the_whole_image():
    """KLT-JND has zeros and ResJND near-zero residuals: they count as half a grey level."""
    grey = np.full((64, 64), 128, np.uint8)
    jnd = np.full((64, 64), 5.0)
    jnd[10, 10] = 0.0
    plus_one = grey + 1
    assert visibility(grey, plus_one, jnd).p_detect < 0.01
    assert visibility(grey, plus_one, np.full((64, 64), 5.0)).p_detect < visibility(grey, plus_one, jnd).p_detect


def test_cli_visibility_map_takes_several_distorted_images_and_computes_the_map_once(tmp_path, capsys, monkeypatch):
    from napari_resjnd.core import maps

    Image.fromarray(CAT).save(tmp_path / "cat.png")
    qualities = (90, 50, 10)
    for q in qualities:
        Image.fromarray(jpeg(CAT, q)).save(tmp_path / f"cat_q{q}.png")
    calls = []
    real = maps.jnd_map
    monkeypatch.setattr(maps, "jnd_map", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    args = ["visibility", "map", str(tmp_path / "cat.png"), *(str(tmp_path / f"cat_q{q}.png") for q in qualities)]
    view = ["--viewing-distance", "80", "--display-size", "27", "--display-resolution", "2560x1440"]
    assert main([*args, "--jnd", "wu2017", "--out", str(tmp_path / "o"), *view, "--peak-luminance", "300"]) == 0
    assert calls == ["wu2017"]
    infos = [json.loads((tmp_path / "o" / f"cat_q{q}_visibility.json").read_text()) for q in qualities]
    viewing = ViewingConditions(distance_cm=80, diagonal_in=27, resolution=(2560, 1440), peak_luminance=300)
    assert all(i["viewing"] == viewing.as_dict() for i in infos)
    assert infos[0]["p_detect"] < infos[1]["p_detect"] < infos[2]["p_detect"]
    assert all("mean_visibility" in i and "detection_ratio" in i for i in infos)
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--viewing-distance", "0"], "--viewing-distance"),
        (["--display-size", "inf"], "--display-size"),
        (["--peak-luminance", "-200"], "--peak-luminance"),
        (["--ppd", "nan"], "--ppd"),
        (["--display-resolution", "1920"], "--display-resolution"),
        (["--ppd", "40", "--viewing-distance", "60"], "--ppd replaces"),
    ],
)
def test_cli_visibility_map_refuses_bad_viewing_conditions_in_one_line(tmp_path, capsys, flags, named):
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    args = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "cat.png"), "--jnd", "chou1995"]
    assert main([*args, "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_visibility_map_refuses_two_distorted_images_of_one_name(tmp_path, capsys):
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    (tmp_path / "a").mkdir()
    Image.fromarray(jpeg(CAT, 50)).save(tmp_path / "a" / "cat.png")
    args = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "cat.png"), str(tmp_path / "a" / "cat.png")]
    assert main([*args, "--jnd", "chou1995", "--out", str(tmp_path / "o")]) == 2
    assert "would both write cat_visibility" in capsys.readouterr().err


def test_cli_visibility_map_without_the_reference_predictor_names_the_pip_command(tmp_path, capsys, monkeypatch):
    import importlib.util

    from napari_resjnd.core.visibility import reference

    monkeypatch.setattr(reference, "_STATE", {"module": None, "error": None, "standins": []})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pycvvdp" else real(n, *a))
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    args = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "cat.png"), "--jnd", "chou1995"]
    assert main([*args, "--reference", "cvvdp", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install --no-deps cvvdp==0.5.7" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--alpha", "1e-300"], ["--slope", "1e6"], ["--alpha", "1e300"]])
def test_cli_visibility_map_writes_strict_json_whatever_alpha_and_slope(tmp_path, flags):
    """`--alpha 1e-300` or `--slope 1e6` wrote "pooled_ratio": Infinity, which strict parsers reject."""
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    Image.fromarray(jpeg(CAT, 30)).save(tmp_path / "q.png")
    args = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "q.png"), "--jnd", "chou1995"]
    assert main([*args, *flags, "--out", str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "q_visibility.json").read_text()

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    info = json.loads(text, parse_constant=refuse)
    assert 0 <= info["p_detect"] <= 1 and math.isfinite(info["pooled_ratio"])
