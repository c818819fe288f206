"""Screenshots for the docs, from a real napari viewer (run under a display or xvfb-run):

    xvfb-run -a python docs/screenshots.py [WEIGHTS]

WEIGHTS: a registry name (default) or a weights file, e.g. the authors' .pth.
Writes docs/images/predict.png: the Predict widget docked beside the coffee
photo and the JND layer it added.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication
from skimage import data

from napari_resjnd.widgets.predict import PredictWidget

OUT = Path(__file__).parent / "images"


def main(weights: str = "resjnd-cplset") -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 760)  # napari offers no public window size
    layer = viewer.add_image(data.coffee()[::2, ::2], name="coffee")
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Predict JND (ResJND)", area="right")
    if Path(weights).exists():
        widget.add_weights_file(weights)
    widget.model.value = str(Path(weights).expanduser()) if Path(weights).exists() else weights
    widget.image.value = layer
    widget.precision.value = "fp32"
    widget.run()
    app = QApplication.instance()
    while widget.busy:
        app.processEvents()
    for name in ("coffee CPL", "coffee residual"):
        if name in viewer.layers:
            viewer.layers[name].visible = False
    app.processEvents()
    OUT.mkdir(exist_ok=True)
    viewer.screenshot(str(OUT / "predict.png"), canvas_only=False)
    print("wrote", OUT / "predict.png", "|", widget.status.value)
    viewer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
