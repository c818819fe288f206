"""The JND model zoo: seconds per megapixel of every model on this CPU (ResJND for
scale) and one figure with every model's map side by side.

    python benchmarks/zoo.py [--out docs/images] [--weights resjnd-cplset] [--repeat 3]

Speed: each classic model on a 1024 x 1024 crop of scikit-image's
``hubble_deep_field`` colour photo (best of ``--repeat``); ResJND (fp32 and the
default precision) on a 512 x 512 crop, scaled per megapixel. The figure: every
map of scikit-image's ``coffee`` photo, each on its own colour scale, with its mean.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

import napari_resjnd as rj
from napari_resjnd.core.precision import resolve as resolve_precision
from napari_resjnd.core.zoo import MODELS


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def seconds(fn, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/images")
    ap.add_argument("--weights", default="resjnd-cplset")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    threads = torch.get_num_threads()
    print(f"machine: {cpu_name()}, {threads} torch threads, torch {torch.__version__}, numpy {np.__version__}")

    big = data.hubble_deep_field()[:1024, :1024]
    mp = big.shape[0] * big.shape[1] / 1e6
    print("\n| model | seconds per megapixel |\n| --- | ---: |")
    for name, m in MODELS.items():
        print(f"| {name} ({m.title}) | {seconds(lambda m=m: m.compute(big), args.repeat) / mp:.2f} |", flush=True)
    model = rj.load_model(args.weights)
    small = big[:512, :512]
    for precision in dict.fromkeys(
        ["fp32", resolve_precision("auto", torch.device("cpu"), inference=True, registry_weights=True)]
    ):
        s = seconds(lambda p=precision: rj.predict(model, small, device="cpu", precision=p), 1)
        print(f"| resjnd ({precision}) | {s / (512 * 512 / 1e6):.1f} |", flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = data.coffee()
    maps = {"resjnd": rj.predict(model, img, device="cpu").jnd, **{n: rj.jnd_map(n, img) for n in MODELS}}
    fig, axes = plt.subplots(2, 5, figsize=(20, 6.6))
    axes = axes.ravel()
    axes[0].imshow(img)
    axes[0].set_title("coffee (scikit-image)")
    for ax, (name, m) in zip(axes[1:], maps.items(), strict=True):
        im = ax.imshow(m, cmap="inferno", vmin=0, vmax=float(np.percentile(m, 99.5)))
        ax.set_title(f"{name}: mean {m.mean():.2f}")
        fig.colorbar(im, ax=ax, fraction=0.035, pad=0.01)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle("JND maps in grey levels (each on its own scale, up to its 99.5th percentile)")
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "zoo.png", dpi=72)
    print(f"\nwrote {out / 'zoo.png'}")


if __name__ == "__main__":
    main()
