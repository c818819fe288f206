"""Probe: how many of the last recursions int8 keeps in fp32 (``int8.FP32_RECURSIONS``),
speed against error, on crops of public scikit-image photos and a flat grey image.

Each setting is quantised into a temporary cache (the shipped cache is untouched).

    python benchmarks/int8_keep_probe.py [--keep 4 2] [--size 256]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from skimage import data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=int, nargs="+", default=[4, 2])
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    os.environ["RESJND_INT8_CACHE_DIR"] = tempfile.mkdtemp(prefix="resjnd-int8-probe-")
    import napari_resjnd as rj
    from napari_resjnd.core import int8

    model = rj.load_model("resjnd-cplset")
    n = args.size
    images = {
        "coffee": data.coffee()[:n, :n],
        "hubble": data.hubble_deep_field()[:n, :n],
        "ihc": data.immunohistochemistry()[:n, :n],
        "flat grey": np.full((128, 128, 3), 128, np.uint8),
    }
    exact = {k: rj.predict(model, v, device="cpu", precision="fp32").jnd for k, v in images.items()}
    print("| fp32 recursions kept | image | s / MP | JND error vs fp32 (mean / p99.9) |\n| ---: | --- | ---: | --- |")
    for keep in args.keep:
        int8.FP32_RECURSIONS, int8.SCHEME = keep, f"probe-keep{keep}"
        int8._compiled.clear()
        int8._backend_versions.cache_clear()
        rj.predict(model, images["flat grey"][:64, :64], device="cpu", precision="int8")  # quantise
        for name, img in images.items():
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                jnd = rj.predict(model, img, device="cpu", precision="int8").jnd
                best = min(best, time.perf_counter() - t0)
            d = np.abs(jnd - exact[name])
            mp = img.shape[0] * img.shape[1] / 1e6
            print(f"| {keep} | {name} | {best / mp:.1f} | {d.mean():.3f} / {np.percentile(d, 99.9):.2f} |", flush=True)


if __name__ == "__main__":
    main()
