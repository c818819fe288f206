"""The npe2 plugin: manifest, Qt-free import, sample data, writer, launcher."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import make_tiny
from PIL import Image

from napari_resjnd.core.weights import save_weights


@pytest.mark.slow
def test_import_does_not_pull_qt_or_napari():
    code = (
        "import sys, napari_resjnd; bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_manifest_is_found_and_valid():
    from npe2 import PluginManager

    pm = PluginManager()
    pm.discover(include_npe1=False)
    mf = pm.get_manifest("napari-resjnd")
    assert any("Predict" in w.display_name for w in mf.contributions.widgets)
    assert {s.key for s in mf.contributions.sample_data} >= {"astronaut", "coffee", "chelsea"}
    assert mf.contributions.writers[0].layer_types == ["image"]


@pytest.mark.gui
def test_sample_data_are_colour_photos(make_napari_viewer):
    viewer = make_napari_viewer()
    for key in ("astronaut", "coffee", "chelsea"):
        viewer.open_sample("napari-resjnd", key)
    shapes = [layer.data.shape for layer in viewer.layers]
    assert all(layer.rgb for layer in viewer.layers)
    assert shapes == [(512, 512, 3), (400, 600, 3), (300, 451, 3)]


@pytest.mark.gui
def test_writer_keeps_provenance(make_napari_viewer, tmp_path):
    from napari_resjnd import predict
    from napari_resjnd.widgets import _layers

    viewer = make_napari_viewer()
    src = viewer.add_image(
        np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8), name="img", scale=(2, 2), rgb=True
    )
    pred = predict(make_tiny(), src.data, device="cpu")
    _layers.add_or_update(viewer, src, pred, _layers.OUTPUTS, True)
    from napari_resjnd._writer import write_layer_with_provenance

    layer = viewer.layers["img JND"]
    data, meta, _ = layer.as_layer_data_tuple()
    paths = write_layer_with_provenance(str(tmp_path / "jnd.tif"), data, meta)
    back = tifffile.imread(paths[0])
    np.testing.assert_array_equal(back, pred.jnd)
    side = json.loads((tmp_path / "jnd.json").read_text())
    assert side["metadata"]["resjnd"]["output"] == "jnd"
    assert side["metadata"]["resjnd"]["weights"] == "tiny-8x2" and side["scale"] == [2.0, 2.0]
    with tifffile.TiffFile(paths[0]) as tf:
        assert "tiny-8x2" in tf.pages[0].description
    # through napari's own save, choosing this plugin
    saved = layer.save(str(tmp_path / "via_napari.tif"), plugin="napari-resjnd")
    assert (tmp_path / "via_napari.json").exists() and saved


@pytest.mark.gui
def test_launcher_docks_widget_and_loads_images(make_napari_viewer, tmp_path, monkeypatch):
    import napari

    from napari_resjnd.launcher import open_viewer

    made = []
    monkeypatch.setattr(napari, "Viewer", lambda show=True: made.append(make_napari_viewer()) or made[-1])
    img = tmp_path / "photo.png"
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(img)
    weights = save_weights(make_tiny(), tmp_path / "w.safetensors")
    viewer, widget = open_viewer([str(img)], weights=str(weights))
    assert [layer.name for layer in viewer.layers] == ["photo"]
    assert widget.image.value is viewer.layers["photo"] and widget.model.value == str(weights)
    viewer2, widget2 = open_viewer([])
    assert viewer2.layers[0].name == "astronaut" and "Predict" in type(widget2).__doc__


def test_root_manifest_is_a_copy_and_git_holds_no_symlinks():
    """src/napari_resjnd/napari.yaml is the manifest napari reads (wheel and editable
    installs alike, Windows included); napari.yaml at the root must equal it."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    package = root / "src" / "napari_resjnd" / "napari.yaml"
    assert not package.is_symlink() and not (root / "napari.yaml").is_symlink()
    assert (root / "napari.yaml").read_bytes() == package.read_bytes(), (
        "napari.yaml differs from src/napari_resjnd/napari.yaml: edit the package's file, then "
        "cp src/napari_resjnd/napari.yaml napari.yaml"
    )
    git = subprocess.run(["git", "ls-files", "-s"], cwd=root, capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip("not a git checkout")
    assert [line for line in git.stdout.splitlines() if line.startswith("120000")] == []
