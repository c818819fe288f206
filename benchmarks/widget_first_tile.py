"""Time to the first visible result on a big photo in the Predict widget: the
tile under the view is computed first and painted into a "(computing)" layer.

A 12 MP photo (scikit-image's coffee, enlarged 7.07x to 4242 x 2828 px, public
domain); the view is zoomed onto one region; Run; the clock stops when the first
tile is painted, and the run is then cancelled (or left to finish with --finish).

xvfb-run -a python benchmarks/widget_first_tile.py [--precision auto] [--finish] [--shot out.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from qtpy.QtWidgets import QApplication


def big_photo(scale: float = 7.07) -> np.ndarray:
    from skimage import data
    from skimage.transform import rescale

    img = rescale(data.coffee(), scale, channel_axis=-1, order=1)
    return (img * 255).round().astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--finish", action="store_true", help="let the whole run finish")
    ap.add_argument("--shot", default=None, help="screenshot when the first tile shows")
    args = ap.parse_args()
    from napari_resjnd.launcher import open_viewer

    img = big_photo()
    viewer, widget = open_viewer([], show=True)
    src = viewer.add_image(img, name="coffee 12 MP")
    widget.image.value = src
    widget.precision.value = args.precision
    viewer.scene.camera.center = (1900, 3300)  # a region off the image's first tiles
    viewer.scene.camera.zoom = 1.0
    app = QApplication.instance()
    painted: list[float] = []
    paint = widget._paint

    def timed_paint(ev, *a):
        paint(ev, *a)
        if type(ev).__name__ == "TilePreview" and not painted:
            painted.append(time.perf_counter())

    widget._paint = timed_paint
    t0 = time.perf_counter()
    widget.run()
    while widget.busy and not (painted and not args.finish):
        app.processEvents()
        time.sleep(0.005)
    first = painted[0] - t0 if painted else float("nan")
    name = "coffee 12 MP JND (computing)"
    print(
        f"{img.shape[1]} x {img.shape[0]} ({img.shape[0] * img.shape[1] / 1e6:.1f} MP), "
        f"{widget.progress.max} tiles ({widget.precision.value}): first tile painted {first:.1f} s "
        f"after Run; preview layer shown: {name in viewer.layers}; status: {widget.status.value}"
    )
    if args.shot:
        for _ in range(20):
            app.processEvents()
        viewer.screenshot(args.shot, canvas_only=False, flash=False)
    if not args.finish:
        widget.cancel()
        while widget.busy:
            app.processEvents()
            time.sleep(0.01)
    else:
        print(f"whole run: {time.perf_counter() - t0:.1f} s; {widget.status.value}")
    viewer.close()


if __name__ == "__main__":
    main()
