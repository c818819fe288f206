"""Figures of the docs' "Visibility" page.

    python benchmarks/visibility.py recovery            # simulated observer: coverage, error, trials
    xvfb-run -a python benchmarks/visibility.py timing [--screenshot docs/images/visibility_test.png]

``recovery`` runs the real adaptive procedure (QUEST+, then the fit and its
bootstrap interval) against simulated observers. ``timing`` runs the Visibility
test widget in a napari window (the trials full screen on mid-grey) and logs each
display change of a flicker trial and a two-interval trial. The visibility model
against ColorVideoVDP is ``benchmarks/visibility_vs_vdp.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def recovery(args: argparse.Namespace) -> None:
    from napari_resjnd.core.visibility.psychophysics.observer import simulate

    print(
        "| true threshold (dB) | observer slope | lapse | trials | runs | 95 % CI coverage | "
        "median abs error (dB) | mean CI width (dB) | s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    plan = [(36.0, n, 3.5, 0.02) for n in (20, 30, 40, 60, 80, 120)]
    plan += [(30.0, 80, 3.5, 0.02), (42.0, 80, 3.5, 0.02), (36.3, 80, 3.5, 0.02), (33.7, 80, 3.5, 0.02)]
    plan += [(36.0, 80, 2.0, 0.02), (36.0, 80, 6.0, 0.02)]
    plan += [(36.0, 80, 3.5, 0.0), (36.0, 80, 3.5, 0.05)]
    for truth, trials, slope, lapse in plan:
        t0 = time.perf_counter()
        r = simulate(truth, trials=trials, runs=args.runs, seed=11, slope=slope, lapse=lapse)
        width = np.mean([x["ci_high"] - x["ci_low"] for x in r["runs"]])
        print(
            f"| {truth:g} | {slope:g} | {lapse:g} | {trials} | {args.runs} | {r['coverage']:.2f} | "
            f"{r['median_abs_error_db']:.2f} | {width:.2f} | {time.perf_counter() - t0:.1f} |",
            flush=True,
        )


def timing(args: argparse.Namespace) -> None:
    import napari
    from qtpy.QtCore import QCoreApplication, QEventLoop

    from napari_resjnd.widgets.visibility_trials import VisibilityTestWidget

    def wait(ms: int) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 800)
    w = VisibilityTestWidget(viewer)
    viewer.window.add_dock_widget(w, name="Visibility test")
    cat = data.chelsea()[40:296, 100:356]
    viewer.add_image(cat, name="chelsea", rgb=True)
    tmp = Path(args.sessions)
    for procedure, rate in (("flicker", 4.0), ("flicker", 8.0), ("2afc-intervals", 0)):
        w.images.value = [viewer.layers["chelsea"]]
        w.models.value = ["yang2005"]
        w.procedure.value = procedure
        w.rate.value = rate or 4.0
        w.trials.value = 2
        w.session_file.value = str(tmp / f"{procedure}-{rate:g}-{time.time_ns()}.json")
        w.start()
        while w.trial is None:
            wait(20)
        wait(3000 if procedure == "flicker" else 1600)
        times, clock = w.clock.times()
        d = np.diff(times) * 1000
        issued = np.diff(w.frame_times) * 1000
        if procedure == "flicker":
            if args.screenshot and rate == 4.0:
                Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).save(args.screenshot)
            print(
                f"flicker set to {rate:g} Hz: {len(times)} display changes in 3 s ({clock} clock, "
                f"{w.clock.dropped} dropped), measured {w.measured_hz():.3f} Hz; half period {d.mean():.1f} ms "
                f"(sd {d.std():.2f}, min {d.min():.1f}, max {d.max():.1f}); as issued: sd {issued.std():.2f} ms"
            )
        else:
            print(
                f"two intervals (500 ms, blank 400 ms, 500 ms), {clock} clock: changes after "
                f"{', '.join(f'{v:.1f}' for v in d)} ms"
            )
        w.stop("benchmark")
    viewer.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["recovery", "timing"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--sessions", default="/tmp/resjnd-visibility-bench")
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args()
    {"recovery": recovery, "timing": timing}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
