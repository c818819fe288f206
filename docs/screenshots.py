"""Screenshots for the docs, from a real napari viewer (run under a display or xvfb-run):

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots.py [WEIGHTS]

WEIGHTS: a registry name (default) or a weights file, e.g. the authors' .pth.
Writes, in a 1280 x 800 napari window (a laptop screen), docs/images/predict.png (the
Predict widget beside scikit-image's coffee photo and the JND layer it added) and
docs/images/widget_<name>.png: each of the seven widgets docked as *Plugins -> ResJND*
docks it, after a short run where it has results to show.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
from PIL import Image
from qtpy.QtWidgets import QApplication
from skimage import data

OUT = Path(__file__).parent / "images"
PLUGIN = "napari-resjnd"
SIZE = (1280, 800)


def settle(seconds: float = 0.3) -> None:
    app = QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()


def wait(widget) -> None:
    while widget.runner.busy:
        settle(0.05)
    settle()


def docked(name: str):
    """A fresh viewer at laptop size with the widget ``name`` docked from the plugin menu."""
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)  # napari offers no public window size
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    settle()
    return viewer, widget


def save(viewer, name: str) -> None:
    """The whole window, as a PNG with as few bytes as its pixels allow."""
    settle()
    OUT.mkdir(exist_ok=True)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    buf = io.BytesIO()
    Image.fromarray(shot[..., :3]).save(buf, "PNG", optimize=True)
    (OUT / name).write_bytes(buf.getvalue())
    print(f"wrote {OUT / name} ({shot.shape[1]} x {shot.shape[0]}, {len(buf.getvalue()) // 1024} KiB)")
    viewer.close()


def scroll_to(widget, section: str) -> None:
    """Scroll the dock so that the folding section titled ``section`` is at its top."""
    from superqt import QCollapsible

    for fold in widget.body.findChildren(QCollapsible):
        if fold.text() == section:
            widget.native.ensureWidgetVisible(fold, 0, 0)
            area = widget.native.verticalScrollBar()
            area.setValue(min(area.maximum(), fold.y() - 8))
    settle()


def predict(weights: str) -> None:
    viewer, widget = docked("Predict JND (ResJND)")
    layer = viewer.add_image(data.coffee()[::2, ::2], name="coffee")
    if Path(weights).exists():
        widget.add_weights_file(weights)
    widget.model.value = str(Path(weights).expanduser()) if Path(weights).exists() else weights
    widget.image.value = layer
    widget.precision.value = "fp32"
    widget.run()
    wait(widget)
    for name in ("coffee CPL", "coffee residual"):
        if name in viewer.layers:
            viewer.layers[name].visible = False
    print("predict:", widget.status.value)
    save(viewer, "predict.png")
    viewer, widget = docked("Predict JND (ResJND)")
    viewer.add_image(data.coffee()[::2, ::2], name="coffee")
    save(viewer, "widget_predict.png")


def finetune(weights: str) -> None:
    viewer, widget = docked("Fine-tune ResJND")
    viewer.add_image(data.coffee()[::2, ::2], name="coffee")
    viewer.add_shapes([[[20, 40], [20, 140], [120, 140], [120, 40]]], shape_type="rectangle", name="patches")
    settle()
    widget.annotation.value = viewer.layers["patches"]
    save(viewer, "widget_finetune.png")


def evaluate(weights: str) -> None:
    viewer, widget = docked("Evaluate JND maps")
    layer = viewer.add_image(data.astronaut()[:256, 128:384], name="astronaut")
    widget.image.value = layer
    widget.maps.value = ["chou1995", "yang2005", "wu2017", "uniform", "shuffled"]
    widget.psnr.value = "26, 30, 34"
    widget.run()
    wait(widget)
    print("evaluate:", widget.status.value)
    scroll_to(widget, "Metric table")
    save(viewer, "widget_evaluate.png")


def annotate(weights: str) -> None:
    viewer, widget = docked("Annotate CPL")
    viewer.add_image(data.chelsea(), name="chelsea")
    viewer.add_shapes(
        [[[60, 80], [60, 200], [180, 200], [180, 80]], [[100, 260], [100, 380], [220, 380], [220, 260]]],
        shape_type="rectangle",
        edge_color="yellow",
        face_color="transparent",
        name="boxes",
    )
    settle()
    widget.shapes.value = viewer.layers["boxes"]
    save(viewer, "widget_annotate.png")


def visibility(weights: str) -> None:
    viewer, widget = docked("Visibility map")
    photo = data.coffee()[::2, ::2]
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=70)
    pristine = viewer.add_image(photo, name="coffee")
    coded = viewer.add_image(np.asarray(Image.open(buf)), name="coffee JPEG q70")
    widget.pristine.value, widget.distorted.value, widget.model.value = pristine, coded, "yang2005"
    widget.run()
    wait(widget)
    print("visibility map:", widget.status.value)
    save(viewer, "widget_visibility.png")


def visibility_test(weights: str) -> None:
    viewer, widget = docked("Visibility test")
    layer = viewer.add_image(data.chelsea()[50:306, 150:406], name="chelsea")
    widget.images.value = [layer]
    save(viewer, "widget_visibility_test.png")


def coding(weights: str) -> None:
    viewer, widget = docked("JND-guided coding")
    layer = viewer.add_image(data.astronaut()[:256, 128:384], name="astronaut")
    widget.image.value = layer
    widget.codec.value = "jpeg"
    widget.models.value = ["chou1995", "yang2005"]
    widget.sweep.value = "20, 35, 50, 65, 80, 95"
    widget.run()
    wait(widget)
    for lyr in viewer.layers:
        lyr.visible = lyr.name.endswith("yang2005 (same bpp)")
    print("coding:", widget.status.value)
    scroll_to(widget, "BD-rate table")
    save(viewer, "widget_coding.png")


#: Each widget's screenshot, in the order of napari's menu.
SHOTS: list[Callable[[str], None]] = [predict, finetune, evaluate, annotate, visibility, visibility_test, coding]


def main(weights: str = "resjnd-cplset") -> None:
    for shot in SHOTS:
        shot(weights)


if __name__ == "__main__":
    main(*sys.argv[1:])
