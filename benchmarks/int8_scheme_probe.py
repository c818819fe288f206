"""int8 schemes side by side on this CPU: speed on a whole 768 x 512 photo against the
plain fp32 forward, and the JND error against fp32 on held-out images.

Schemes (all built by ``napari_resjnd.core.int8_graph``, the same calibration):
``two-pass`` (the last 6 recursions in two int8 passes: what CPUs with VNNI or AMX
get), ``fp32-last-4`` (the last 4 recursions in fp32: what other CPUs get),
``one-pass`` (every recursion in plain int8), ``two-pass-N`` (the last N in two passes). To see another instruction set
on this machine, cap oneDNN's: ``ONEDNN_MAX_CPU_ISA=AVX2`` (or ``AVX512_CORE``,
no VNNI); the table says which kernels ran.

    python benchmarks/int8_scheme_probe.py [--schemes two-pass fp32-last-4] [--plain]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "resjnd-official" / "example"


def held_out() -> dict[str, np.ndarray]:
    """The authors' three examples, two scikit-image crops, and three synthetic worst cases;
    none is in the calibration set."""
    from PIL import Image
    from skimage import data

    imgs = {f"example {p.stem}": np.asarray(Image.open(p).convert("RGB")) for p in sorted(SHARED.glob("*.bmp"))}
    imgs["coffee"] = data.coffee()[:256, :256]
    imgs["hubble"] = data.hubble_deep_field()[:256, :256]
    imgs["flat grey"] = np.full((128, 128, 3), 128, np.uint8)
    imgs["noise"] = np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8)
    imgs["checkerboard"] = np.repeat(
        ((np.indices((128, 128)).sum(0) // 8) % 2 * 255).astype(np.uint8)[..., None], 3, -1
    )
    return imgs


def nchw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32) / 255


def jnd(cpl: np.ndarray, x: np.ndarray) -> np.ndarray:
    r = (cpl - x) * 255
    return np.sqrt((r * r).mean(1))[0]


def scheme_args(name: str) -> dict:
    if name == "two-pass":
        return {}
    if name == "fp32-last-4":
        return {"two_pass": 0, "fp32": 4}
    if name == "one-pass":
        return {"two_pass": 0}
    if name.startswith("two-pass-"):
        return {"two_pass": int(name.rsplit("-", 1)[1])}
    raise SystemExit(f"unknown scheme {name!r}")


def kernels(compiled) -> str:
    """Which convolution kernels OpenVINO chose, e.g. '62 jit_avx2_I8, 2 brgconv_avx2_f32'."""
    c = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            c[info["primitiveType"].astype(str)] += 1
    return ", ".join(f"{n} {k}" for k, n in c.most_common())


def best_seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schemes", nargs="+", default=["two-pass", "fp32-last-4", "one-pass"])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument(
        "--plain", action="store_true", help="time torch's plain fp32 forward of the photo (about a minute)"
    )
    args = ap.parse_args()
    import openvino as ov
    from skimage import data

    import napari_resjnd as rj
    from napari_resjnd.core import int8, int8_graph

    model = rj.load_model("resjnd-cplset").eval()
    imgs = held_out()
    with torch.inference_mode():
        exact = {k: jnd(model(torch.from_numpy(nchw(v))).numpy(), nchw(v)) for k, v in imgs.items()}
    photo = nchw(data.hubble_deep_field()[:512, :768])
    mp = photo.shape[2] * photo.shape[3] / 1e6
    highest = int8_graph.activation_ranges(model, int8_graph.calibration_images())
    print(
        f"Measured on: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(not set)')}, torch {torch.__version__}, "
        f"OpenVINO {ov.__version__.split('-')[0]}, with `python benchmarks/int8_scheme_probe.py`"
    )
    if args.plain:
        with torch.inference_mode():
            s = best_seconds(lambda: model(torch.from_numpy(photo)), 1)
        print(f"plain fp32 forward of the 768 x 512 photo: {s / mp:.1f} s/MP")
    print("\n| scheme | convolution kernels | s / MP (768 x 512, whole) | JND error vs fp32, mean / p99.9 |")
    print("| --- | --- | ---: | --- |")
    for name in args.schemes:
        net = int8_graph.build(model, highest, **scheme_args(name))
        cfg = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": "f32"}
        compiled = int8._core().compile_model(net, "CPU", {**cfg, "PERFORMANCE_HINT": "LATENCY"})
        errs = []
        for k, v in imgs.items():
            d = np.abs(jnd(compiled({0: nchw(v)})[0], nchw(v)) - exact[k])
            errs.append(f"{k} {d.mean():.3f} / {np.percentile(d, 99.9):.2f}")
        s = best_seconds(lambda c=compiled: c({0: photo}), args.reps) / mp
        print(f"| {name} | {kernels(compiled)} | {s:.1f} | {'; '.join(errs)} |", flush=True)


if __name__ == "__main__":
    main()
