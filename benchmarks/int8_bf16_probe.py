"""Probe: int8 with the kept-precise part in bf16 instead of f32 (OpenVINO's
INFERENCE_PRECISION_HINT), on CPUs with native bf16 (AVX-512 BF16 or AMX).

Variants, on a crop of a public scikit-image photo, each against ``predict`` in fp32:
torch bf16; int8 as shipped (f32 hint); int8 with a bf16 hint everywhere; int8 with
a bf16 hint but the additions and the input/output convolutions marked precise
(rt_info ``precise_0``, which OpenVINO keeps out of reduced precision).

    python benchmarks/int8_bf16_probe.py [--size 256] [--repeat 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from skimage import data

import napari_resjnd as rj
from napari_resjnd.core import int8
from napari_resjnd.core.devices import cpu_has_fast_bf16
from napari_resjnd.core.jnd import jnd_from_residual


def best_of(fn, repeat: int) -> tuple[float, np.ndarray]:
    out, best = None, float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def compile_variant(model_ov, hint: str, precise: bool):
    core = int8._core()
    m = model_ov.clone()
    if precise:
        ops = m.get_ordered_ops()
        convs = [op for op in ops if op.get_type_name() == "Convolution"]
        keep = [convs[0], convs[-1], *convs[-1 - 2 * int8.FP32_RECURSIONS : -1]]
        for op in [*keep, *(op for op in ops if op.get_type_name() == "Add")]:
            op.get_rt_info()["precise_0"] = ""
    cfg = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": hint}
    return core.compile_model(m, "CPU", {**cfg, "PERFORMANCE_HINT": "LATENCY"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    model = rj.load_model("resjnd-cplset")
    img = data.coffee()[: args.size, : args.size]
    x = img.astype(np.float32) / 255
    mp = img.shape[0] * img.shape[1] / 1e6
    t, ref = best_of(lambda: rj.predict(model, img, device="cpu", precision="fp32").jnd, args.repeat)
    rows = [("torch fp32 (predict)", t, ref)]
    if cpu_has_fast_bf16():
        t, j = best_of(lambda: rj.predict(model, img, device="cpu", precision="bf16").jnd, args.repeat)
        rows.append(("torch bf16 (predict)", t, j))
    net = int8.network(model)  # builds or loads the cached int8 model
    ov_model = int8._core().read_model(int8.cached_model_path(model))
    variants = [("int8, f32 hint (shipped)", "f32", False), ("int8, bf16 hint", "bf16", False)]
    variants.append(("int8, bf16 hint, additions + io convs precise", "bf16", True))
    for name, hint, precise in variants:
        compiled = net.compiled if (hint, precise) == ("f32", False) else compile_variant(ov_model, hint, precise)
        runner = int8.Int8Network(compiled, "probe")
        t, cpl = best_of(lambda r=runner: r.run(x), args.repeat)
        rows.append((name, t, jnd_from_residual((cpl - x) * 255)))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"native bf16: {cpu_has_fast_bf16()}, torch {torch.__version__}; coffee {img.shape[1]}x{img.shape[0]}"
    )
    print("| path | s/MP | x fp32 | |JND - fp32| mean / p99.9 / max |\n| --- | ---: | ---: | --- |")
    base = rows[0][1]
    for name, t, j in rows:
        d = np.abs(j - ref)
        err = f"{d.mean():.3f} / {np.percentile(d, 99.9):.2f} / {d.max():.2f}"
        print(f"| {name} | {t / mp:.1f} | {base / t:.2f} | {err} |")


if __name__ == "__main__":
    main()
