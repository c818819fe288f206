"""The Evaluate widget: same numbers as the core/CLI, noisy layers, table and plot."""

import csv

import numpy as np
import pytest
from conftest import make_tiny
from PIL import Image
from skimage import data as skdata

from napari_resjnd import predict
from napari_resjnd.cli import main
from napari_resjnd.widgets import _layers
from napari_resjnd.widgets.evaluate import EvaluateWidget

pytestmark = pytest.mark.gui


@pytest.mark.slow
def test_widget_matches_cli_and_adds_noisy_layers(qtbot, make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    w = EvaluateWidget(viewer)
    viewer.window.add_dock_widget(w)
    img = skdata.coffee()[:176, :200]
    src = viewer.add_image(img, name="coffee", rgb=True)
    pred = predict(make_tiny(), img, device="cpu")
    _layers.add_or_update(viewer, src, pred, ["JND"], True)
    w.image.value = src
    assert "layer:coffee JND" in list(w.maps.choices)
    w.maps.value = ["layer:coffee JND", "chou1995", "uniform", "shuffled"]
    w.psnr.value = "26, 32"
    w.run()
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert w.status.value.startswith("done"), w.status.value
    assert len(w.results) == 8
    # the table: a row per map, a column per target, the metric picked under "show"
    assert w.table.column_headers == ("map", "26 dB", "32 dB")
    assert [row[0] for row in w.table.data] == ["coffee JND", "chou1995", "uniform", "shuffled"]
    ssim = {(r.jnd, r.target_psnr): r.metrics["ssim"] for r in w.results}
    assert w.table.data[1][1:] == [f"{ssim['chou1995', 26]:.4f}", f"{ssim['chou1995', 32]:.4f}"]
    w.metric.value = "gmsd"
    gmsd = next(r.metrics["gmsd"] for r in w.results if (r.jnd, r.target_psnr) == ("uniform", 32))
    assert w.table.data[2][2] == f"{gmsd:.4f}"
    assert w.plot.getPlotItem().getAxis("left").labelText.startswith("GMSD")
    noisy = viewer.layers["coffee noisy chou1995 26 dB"]
    assert noisy.rgb and noisy.data.shape == img.shape and noisy.metadata["resjnd"]["target_psnr"] == 26
    assert len(w.plot.getPlotItem().listDataItems()) == 4

    # the CLI on the same image gives the same numbers for the classic map and the controls
    Image.fromarray(img).save(tmp_path / "coffee.png")
    main(
        [
            "evaluate",
            str(tmp_path / "coffee.png"),
            "--jnd",
            "chou1995,uniform",
            "--psnr",
            "26",
            "--psnr",
            "32",
            "--out",
            str(tmp_path / "r.csv"),
            "-q",
        ]
    )
    rows = {
        (r["jnd"], float(r["target_psnr"])): r for r in csv.DictReader((tmp_path / "r.csv").read_text().splitlines())
    }
    for r in w.results:
        if r.jnd in ("chou1995", "uniform"):
            for m in ("psnr", "ssim", "vifp", "gmsd", "pspnr"):
                assert float(rows[(r.jnd, r.target_psnr)][m]) == pytest.approx(r.metrics[m], rel=1e-9)


def test_errors_are_reported(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    w = EvaluateWidget(viewer)
    viewer.add_image(np.zeros((30, 30, 3), np.uint8), name="img", rgb=True)
    w.image.value = viewer.layers["img"]
    w.maps.value = ["chou1995"]
    w.psnr.value = "abc"
    w.run()
    assert "target PSNR" in w.status.value and not w.busy
    w.psnr.value = "30"
    w.maps.value = []
    w.run()
    assert "at least one JND map" in w.status.value
