"""Time from clicking Run to the last result layer in the viewer, 512 x 512 photo.

xvfb-run -a python benchmarks/widget_first_result.py [--precision auto|fp32|bf16] [--shot out.png]
"""

import argparse
import time

from qtpy.QtWidgets import QApplication


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--shot", default=None, help="save a screenshot of the viewer here")
    args = ap.parse_args()
    from napari_resjnd.launcher import open_viewer

    viewer, widget = open_viewer([], show=True)  # astronaut sample, 512 x 512
    widget.precision.value = args.precision
    app = QApplication.instance()
    t = time.perf_counter()
    widget.run()
    ticks, last = [], time.perf_counter()
    while widget.busy:
        app.processEvents()
        now = time.perf_counter()
        ticks.append(now - last)
        last = now
        time.sleep(0.005)
    dt = time.perf_counter() - t
    print(
        f"{args.precision}: first result in {dt:.1f} s; {widget.status.value}; "
        f"longest event-loop gap {max(ticks) * 1000:.0f} ms"
    )
    if args.shot:
        viewer.layers["astronaut CPL"].visible = False
        viewer.layers["astronaut residual"].visible = False
        for _ in range(20):
            app.processEvents()
        viewer.screenshot(args.shot, canvas_only=False, flash=False)
    viewer.close()


if __name__ == "__main__":
    main()
