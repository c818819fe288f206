"""Figures of the docs' "Visibility" page.

    python benchmarks/visibility.py recovery            # simulated observer: coverage, error, trials
    python benchmarks/visibility.py pdetect [--crop 256] [--weights W]  # p_detect: 8 images x JPEG 90/50/20 x models
    xvfb-run -a python benchmarks/visibility.py timing [--screenshot docs/images/visibility_test.png]

``recovery`` runs the real adaptive procedure (QUEST+, then the fit and its
bootstrap interval) against simulated observers. ``pdetect`` uses the evaluation's
eight images (six scikit-image photos, actor and lighthouse from OpenJND) as centre
crops. ``timing`` runs the Visibility test widget in a napari window and logs each
display change of a flicker trial and a two-interval trial.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
OPENJND = (
    Path(os.environ.get("RESJND_JND_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "jnd-reference"))
    / "inputs"
)
QUALITIES = (90, 50, 20)


def images(crop: int) -> dict[str, np.ndarray]:
    out = {k: getattr(data, k)()[..., :3] for k in PHOTOS}
    for k in ("actor", "lighthouse"):
        if (OPENJND / f"{k}.png").is_file():
            out[k] = np.asarray(Image.open(OPENJND / f"{k}.png").convert("RGB"))
        else:
            print(f"{OPENJND / k}.png not found: left out", file=sys.stderr)
    cropped = {}
    for k, a in out.items():
        h, w = a.shape[:2]
        y, x = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        cropped[k] = np.ascontiguousarray(a[y : y + crop, x : x + crop])
    return cropped


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


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


def pdetect(args: argparse.Namespace) -> None:
    from napari_resjnd.core.maps import MODELS, jnd_map
    from napari_resjnd.core.visibility.detection import visibility

    models = ["resjnd", *MODELS]
    imgs = images(args.crop)
    table: dict[tuple[str, int], list[float]] = {}
    print(f"| image | JPEG q | PSNR (dB) | {' | '.join(models)} |")
    print("| --- | ---: | ---: |" + " ---: |" * len(models))
    for name, img in imgs.items():
        maps = {
            m: jnd_map(m, img, weights=args.weights, precision=args.precision) if m == "resjnd" else jnd_map(m, img)
            for m in models
        }
        for q in QUALITIES:
            coded = jpeg(img, q)
            mse = np.mean((coded.astype(float) - img) ** 2)
            p = [visibility(img, coded, maps[m]).p_detect for m in models]
            for m, v in zip(models, p):
                table.setdefault((m, q), []).append(v)
            print(f"| {name} | {q} | {10 * np.log10(255**2 / mse):.2f} | " + " | ".join(f"{v:.3f}" for v in p) + " |")
        sys.stdout.flush()
    print("\nmean over images:\n")
    print("| JPEG q | " + " | ".join(models) + " |")
    print("| ---: |" + " ---: |" * len(models))
    for q in QUALITIES:
        print(f"| {q} | " + " | ".join(f"{np.mean(table[(m, q)]):.3f}" for m in models) + " |")


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
    ap.add_argument("part", choices=["recovery", "pdetect", "timing"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--weights", default="resjnd-cplset", help="ResJND weights: registry name or file")
    ap.add_argument("--sessions", default="/tmp/resjnd-visibility-bench")
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args()
    {"recovery": recovery, "pdetect": pdetect, "timing": timing}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
