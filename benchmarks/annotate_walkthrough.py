"""The CPL-annotation workflow end to end with a simulated observer, in a real viewer:
five rectangles -> judgements -> target layer -> fine-tuning -> the new JND map.

    xvfb-run -a python benchmarks/annotate_walkthrough.py [--shot walkthrough.png]

Prints the time per judgement spent by the software (answer to next stimulus on
screen), the flicker period jitter, the critical levels found, the fine-tuning
losses, and how the JND map changed inside the rectangles.
"""

import argparse
import tempfile
import time

import numpy as np
from qtpy.QtWidgets import QApplication
from skimage import data


def pump(app, seconds=0.0):
    end = time.perf_counter() + seconds
    while True:
        app.processEvents()
        if time.perf_counter() >= end:
            return
        time.sleep(0.002)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shot", default=None)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    import napari

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    img = data.coffee()
    viewer.add_image(img, name="coffee", rgb=True)
    boxes = [(30, 130, 40, 140), (200, 300, 60, 160), (60, 160, 300, 400), (250, 350, 380, 480), (100, 200, 470, 570)]
    viewer.add_shapes(
        [[[y0, x0], [y0, x1], [y1, x1], [y1, x0]] for y0, y1, x0, x1 in boxes],
        shape_type="rectangle",
        name="rects",
        face_color="transparent",
        edge_color="yellow",
    )
    _, ann = viewer.window.add_plugin_dock_widget("napari-resjnd", "Annotate CPL")
    ann.pristine.value, ann.shapes.value = viewer.layers["coffee"], viewer.layers["rects"]
    ann.generator.value, ann.levels.value, ann.rate.value = "jpeg", 8, 2.0
    ann.session_file.value = tempfile.mktemp(suffix=".json")
    thresholds = [3, 5, 2, 6, 4]  # the simulated observer's true critical levels
    ann.start()
    overheads, jitters = [], []
    while ann.busy:
        pump(app, 1.05)  # the observer looks at the flicker for about a second
        jitters.append(ann.flicker_jitter_ms())
        i, level = ann.current
        t = time.perf_counter()
        ann.answer(level <= thresholds[i])
        overheads.append(time.perf_counter() - t)
    crit = [p.critical for p in ann.session.patches]
    print(
        f"{len(overheads)} judgements for 5 patches of 100 x 100 px (8-level JPEG ladders); critical levels "
        f"{crit} (observer's {thresholds}); software time per judgement: median "
        f"{np.median(overheads) * 1000:.0f} ms, max {max(overheads) * 1000:.0f} ms; flicker at 2 Hz, "
        f"half-period jitter median {np.median([j for j in jitters if j]):.1f} ms"
    )

    _, pr = viewer.window.add_plugin_dock_widget("napari-resjnd", "Predict JND (ResJND)")
    pr.image.value = viewer.layers["coffee"]
    pr.model.value = "resjnd-cplset"

    def predict_jnd():
        pr.run()
        while pr.busy:
            pump(app, 0.05)
        return np.asarray(viewer.layers["coffee JND"].data).copy()

    before = predict_jnd()

    _, ft = viewer.window.add_plugin_dock_widget("napari-resjnd", "Fine-tune ResJND")
    ft.pristine.value, ft.target.value = viewer.layers["coffee"], viewer.layers["coffee CPL target"]
    ft.annotation.value = viewer.layers["rects"]
    ft.weights.value = "resjnd-cplset"
    ft.epochs.value, ft.batch.value, ft.out_name.value = args.epochs, 4, "coffee-annotated"
    t = time.perf_counter()
    ft.start()
    while ft.busy:
        pump(app, 0.05)
    print(
        f"fine-tuning: {ft.status.value} ({time.perf_counter() - t:.0f} s); validation "
        f"{[round(v, 6) for v in ft.plot.val_y]}"
    )
    assert pr.model.value.endswith("coffee-annotated.safetensors"), pr.model.value  # handed over
    after = predict_jnd()
    a, b = before, after

    inside = np.zeros(img.shape[:2], bool)
    for y0, y1, x0, x1 in boxes:
        inside[y0:y1, x0:x1] = True
    print(
        f"JND mean inside the rectangles: {a[inside].mean():.2f} -> {b[inside].mean():.2f} grey levels; "
        f"outside: {a[~inside].mean():.2f} -> {b[~inside].mean():.2f} (Predict now uses {pr.model.value})"
    )
    if args.shot:
        for layer in viewer.layers:
            layer.visible = layer.name in ("coffee JND", "rects")
        pump(app, 0.5)
        viewer.screenshot(args.shot, canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main()
