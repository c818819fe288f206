"""The authors' published JND maps, reproduced through the registry and the CLI."""

import numpy as np
import pytest
from PIL import Image

from conftest import OFFICIAL, OFFICIAL_NAMES
from napari_resjnd.cli import main

pytestmark = pytest.mark.official


def test_official_examples_within_one_grey_level(official_cache, tmp_path):
    images = [str(OFFICIAL / "example" / f"{n}.bmp") for n in OFFICIAL_NAMES]
    out = tmp_path / "out"
    rc = main(["predict", *images, "--out", str(out), "--weights", "resjnd-cplset",
               "--device", "cpu", "--precision", "fp32", "--jnd-scale", "max", "-q"])
    assert rc == 0
    for n in OFFICIAL_NAMES:
        ours = np.asarray(Image.open(out / f"{n}_jnd.png"), np.float64)
        ref = np.asarray(Image.open(OFFICIAL / "result" / f"{n}.bmp"), np.float64)
        d = np.abs(ours - ref)
        assert d.max() <= 1, (n, d.max())
        assert d.mean() <= 0.1, (n, d.mean())
