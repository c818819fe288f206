"""GPU check: correctness against CPU fp32 and the authors' maps, ms per megapixel
at each precision, and peak GPU memory. Run through ``gpu_check.sh``.

    PYTHONPATH=src python benchmarks/gpu_check.py --official DIR [--device cuda] [--size 2048]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from napari_resjnd import load_model, normalise_max, predict

MACS_PER_PX = 9 * (3 * 128 + 25 * 2 * 128 * 128 + 128 * 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="folder with the checkpoint, example/ and result/")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=2048, help="side of the speed image")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--crop", type=int, default=192, help="side of the CPU-fp32 comparison crop")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    off = Path(args.official)
    ckpt = next(off.glob("*.pth"))
    model = load_model(ckpt)
    dev = args.device
    precs = ["fp32", "bf16"] + (["fp16"] if dev.startswith("cuda") else [])
    out = {
        "device": torch.cuda.get_device_name(0) if dev.startswith("cuda") else dev,
        "torch": torch.__version__,
        "correctness": [],
        "speed": [],
    }
    print(f"device {out['device']}, torch {torch.__version__}", flush=True)

    # 1. the authors' maps (made on a GPU) and CPU fp32 on a crop
    for img_path in sorted((off / "example").glob("*.bmp")):
        img = np.asarray(Image.open(img_path).convert("RGB"))
        ref = np.asarray(Image.open(off / "result" / img_path.name), np.float64)
        crop = img[: args.crop, : args.crop]
        cpu = predict(model, crop, device="cpu", precision="fp32").jnd
        for p in precs:
            pred = predict(model, img, device=dev, precision=p)
            d_auth = np.abs(normalise_max(pred.jnd).astype(np.float64) - ref)
            d_cpu = np.abs(predict(model, crop, device=dev, precision=p).jnd - cpu)
            row = {
                "image": img_path.name,
                "precision": p,
                "authors_max": float(d_auth.max()),
                "authors_mean": float(d_auth.mean()),
                "cpu_fp32_jnd_mean": float(d_cpu.mean()),
                "cpu_fp32_jnd_max": float(d_cpu.max()),
            }
            out["correctness"].append(row)
            print(
                f"{img_path.name:8} {p:5} vs authors' map: max {row['authors_max']:.0f} mean "
                f"{row['authors_mean']:.4f} | vs CPU fp32 JND: mean {row['cpu_fp32_jnd_mean']:.4f} "
                f"max {row['cpu_fp32_jnd_max']:.3f} grey levels",
                flush=True,
            )

    # 2. speed and memory on a large image
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    mp = args.size * args.size / 1e6
    for p in precs:
        predict(model, big, device=dev, precision=p)  # warm-up: cuDNN picks its kernels
        if dev.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        best = float("inf")
        for _ in range(args.reps):
            t = time.perf_counter()
            pred = predict(model, big, device=dev, precision=p)
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else float("nan")
        row = {
            "precision": p,
            "megapixels": mp,
            "ms_per_mp": best / mp * 1e3,
            "tflops": 2 * MACS_PER_PX * args.size**2 / best / 1e12,
            "peak_gpu_gib": peak,
            "tile": pred.metadata["tile"],
        }
        out["speed"].append(row)
        print(
            f"speed {p:5}: {row['ms_per_mp']:.1f} ms/MP ({row['tflops']:.0f} TFLOP/s), "
            f"peak GPU memory {peak:.2f} GiB, tile {row['tile']}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
