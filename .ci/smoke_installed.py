"""Smoke test of an installed wheel (no extras) beside torch and napari[pyqt6]:
every widget opens from the manifest, the samples load, a classic JND map runs
in the Predict widget without weights, and the writer saves a layer."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import napari
from npe2 import PluginManager
from qtpy.QtWidgets import QApplication

import napari_resjnd

PLUGIN = "napari-resjnd"
where = Path(napari_resjnd.__file__).resolve()
assert "site-packages" in where.parts, f"napari_resjnd imported from {where}, not from the installed wheel"

viewer = napari.Viewer(show=True)  # discovers the plugins
manifest = PluginManager.instance().get_manifest(PLUGIN)
viewer.window._qt_window.resize(1280, 800)
app = QApplication.instance()
widgets = {}
for contribution in manifest.contributions.widgets:
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, contribution.display_name)
    widgets[contribution.display_name] = widget
    app.processEvents()
for sample in manifest.contributions.sample_data:
    viewer.open_sample(PLUGIN, sample.key)
print("widgets:", ", ".join(widgets), "| samples:", ", ".join(layer.name for layer in viewer.layers))

predict = widgets["Predict JND (ResJND)"]
predict.image.value = viewer.layers["chelsea"]
predict.model.value = "classic:chou1995"
predict.run()
deadline = time.monotonic() + 120
while predict.busy and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
assert predict.status.value.startswith("done"), predict.status.value
jnd = next(layer for layer in viewer.layers if layer.name.startswith("chelsea JND"))

with tempfile.TemporaryDirectory() as tmp:
    saved = jnd.save(str(Path(tmp) / "jnd.tif"), plugin=PLUGIN)
    side = json.loads((Path(tmp) / "jnd.json").read_text())
    assert saved and side["metadata"]["resjnd"]["output"] == "jnd", side
window = viewer.window._qt_window
print(f"predict: {predict.status.value} | writer: ok | window {window.width()} x {window.height()}")
viewer.close()
sys.exit(0)
