"""The reference predictor ColorVideoVDP, run for real (skipped where cvvdp is not
installed: pip install --no-deps cvvdp==0.5.7; tox installs it)."""

import importlib.util
import io
import json
import sys
from itertools import pairwise

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core.visibility import reference
from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING, ViewingConditions

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pycvvdp") is None, reason=f"not installed: {reference.INSTALL}"),
    pytest.mark.slow,  # importing cvvdp and building its metric take seconds
]

CROP = np.ascontiguousarray(skdata.astronaut()[100:228, 200:328])


def noisy(sigma=4.0, seed=0):
    """Seeded Gaussian noise, rounded and clipped: the same pixels on every machine."""
    out = CROP + np.random.default_rng(seed).normal(0, sigma, CROP.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg(q):
    buf = io.BytesIO()
    Image.fromarray(CROP).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(buf))


def test_identical_images_are_10_jod_with_an_empty_heatmap():
    r = reference.evaluate(CROP, CROP.copy(), DEFAULT_VIEWING)
    assert r.jod == 10.0 and float(np.abs(r.heatmap).max()) == 0.0 and r.heatmap.shape == CROP.shape[:2]


def test_jod_falls_monotonically_as_jpeg_quality_falls():
    jods = [reference.evaluate(CROP, jpeg(q), DEFAULT_VIEWING).jod for q in (95, 70, 40, 10)]
    assert all(a > b for a, b in pairwise(jods)), jods
    assert jods[0] > 9.9 and jods[-1] < 9.0


def test_a_known_value_and_our_default_display_is_cvvdps_standard_fhd():
    """Computed once with cvvdp 0.5.7 on this crop and noise (cvvdp's own code with the
    torchvision stand-in, which is bit-identical to torchvision's)."""
    r = reference.evaluate(CROP, noisy(), DEFAULT_VIEWING)
    assert r.jod == pytest.approx(9.676719665527344, abs=1e-3)
    assert reference.evaluate(CROP, noisy(), display="standard_fhd").jod == pytest.approx(r.jod, abs=1e-6)
    far = reference.evaluate(CROP, noisy(), ViewingConditions(distance_cm=120)).jod
    dim = reference.evaluate(CROP, noisy(), ViewingConditions(peak_luminance=20)).jod
    assert far > r.jod and dim > r.jod  # farther or dimmer: less visible
    assert r.summary()["display"]["ppd"] == pytest.approx(37.84, abs=0.01)


def test_the_stand_ins_stay_inside_the_cvvdp_import():
    reference.evaluate(CROP, noisy(), DEFAULT_VIEWING)
    for name in reference.standins():
        assert name not in sys.modules or not getattr(sys.modules[name], "__resjnd_standin__", False)


def test_cli_visibility_map_shows_the_reference_beside_the_jnd_map(tmp_path, capsys):
    Image.fromarray(CROP).save(tmp_path / "p.png")
    Image.fromarray(noisy()).save(tmp_path / "n.png")
    args = ["visibility", "map", str(tmp_path / "p.png"), str(tmp_path / "n.png"), "--jnd", "wu2017"]
    assert main([*args, "--reference", "cvvdp", "--out", str(tmp_path / "o")]) == 0
    info = json.loads((tmp_path / "o" / "n_visibility.json").read_text())
    heat = tifffile.imread(tmp_path / "o" / "n_cvvdp.tif")
    assert info["reference"]["jod"] == pytest.approx(9.6767, abs=1e-3) and heat.shape == CROP.shape[:2]
    assert info["reference"]["heatmap_file"] == "n_cvvdp.tif" and "JOD" in capsys.readouterr().out
