"""`resjnd predict` end to end on real files; errors are one line and a non-zero exit."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import make_tiny
from napari_resjnd.cli import main
from napari_resjnd.core.weights import save_weights


@pytest.fixture
def tiny_file(tmp_path):
    return save_weights(make_tiny(), tmp_path / "tiny.safetensors")


def test_predict_writes_maps_and_provenance(tmp_path, tiny_file, rng, capsys):
    img = rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img[..., 0]).save(tmp_path / "grey.bmp")
    out = tmp_path / "out"
    rc = main(["predict", str(tmp_path / "a.png"), str(tmp_path / "grey.bmp"),
               "--out", str(out), "--weights", str(tiny_file), "--tile", "16"])
    assert rc == 0
    jnd = tifffile.imread(out / "a_jnd.tif")
    assert jnd.dtype == np.float32 and jnd.shape == (33, 41)
    png = np.asarray(Image.open(out / "a_jnd.png"))
    assert png.dtype == np.uint8 and np.abs(png.astype(float) - np.clip(np.rint(jnd), 0, 255)).max() == 0
    cpl = np.asarray(Image.open(out / "a_cpl.png"))
    assert cpl.shape == (33, 41, 3)
    meta = json.loads((out / "a.json").read_text())
    assert meta["weights"] == "tiny.safetensors" and meta["source"].endswith("a.png")
    assert meta["tile"] == 16 and meta["jnd_png_scale"] == "absolute"
    assert np.asarray(Image.open(out / "grey_cpl.png")).shape == (33, 41)
    assert "a.png: JND mean" in capsys.readouterr().out


def test_max_scale_png_reaches_255(tmp_path, tiny_file, rng):
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"),
                 "--weights", str(tiny_file), "--jnd-scale", "max", "-q"]) == 0
    assert np.asarray(Image.open(tmp_path / "o" / "a_jnd.png")).max() == 255


def test_bad_image_is_skipped_and_the_rest_processed(tmp_path, tiny_file, rng, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    rc = main(["predict", str(tmp_path / "broken.png"), str(tmp_path / "missing.png"),
               str(tmp_path / "ok.png"), "--out", str(tmp_path / "o"), "--weights", str(tiny_file), "-q"])
    assert rc == 1
    assert (tmp_path / "o" / "ok_jnd.tif").exists()
    err = capsys.readouterr().err
    assert "skipping" in err and "broken.png" in err and "missing.png" in err


def test_bad_weights_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    r = subprocess.run([sys.executable, "-m", "napari_resjnd.cli", "predict", "x.png", "--out",
                        str(tmp_path), "--weights", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resjnd: error:") and "bad.pth" in lines[0]
