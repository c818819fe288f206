"""Speed, accuracy and memory of ResJND inference, measured in one run.

    python benchmarks/bench.py                   # 256 x 256 speed/accuracy + 4.2 MP peak RSS
    python benchmarks/bench.py --size 512 --rss-size 0 --json out.json

Also: the largest tiled-versus-whole JND difference, fine-tuning throughput
(bench_finetune.py's measurement) and the matmul peak of this machine.

Compares a plain full-image fp32 forward (as the authors' test script runs it:
contiguous NCHW, no tiling) against ``predict`` at each available device and
precision: speed-up, GFLOP/s against a measured matmul peak, and the JND error
against fp32 in grey levels. The peak-RSS figure comes from a fresh process
running ``predict`` with default settings on a large image.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_resjnd import predict
from napari_resjnd.core.devices import available_devices
from napari_resjnd.core.model import ResJND
from napari_resjnd.core.weights import REGISTRY, WeightsError, load_model

#: Multiply-adds per pixel of the published network (3x3 convs, no biases).
MACS_PER_PX = 9 * (3 * 128 + 25 * 2 * 128 * 128 + 128 * 3)


def test_image(size: int) -> np.ndarray:
    from skimage import data

    img = data.astronaut()
    reps = (size // img.shape[0] + 1, size // img.shape[1] + 1, 1)
    return np.tile(img, reps)[:size, :size]


def get_model(weights: str) -> tuple[ResJND, str]:
    try:
        return load_model(weights), weights
    except WeightsError as e:
        print(f"note: {e}; using random weights (speed only, accuracy not meaningful)", file=sys.stderr)
        torch.manual_seed(0)
        return ResJND().eval(), "random"


def matmul_peak(dtype: torch.dtype, device: str, n: int = 2048, reps: int = 5) -> float:
    """Achieved GFLOP/s of a large matmul: the practical FMA peak here."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_forward(model: ResJND, img: np.ndarray, reps: int) -> tuple[float, np.ndarray]:
    """The authors' way: one NCHW fp32 tensor, model(x), on the CPU."""
    model = model.to("cpu", memory_format=torch.contiguous_format)
    x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        with torch.no_grad():
            y = model(x)
        best = min(best, time.perf_counter() - t)
    r = (y[0].permute(1, 2, 0).numpy() - img / np.float32(255)) * 255
    return best, np.sqrt((r * r).mean(-1))


def rss_child(size: int, weights: str, precision: str, max_tiles: int) -> None:
    """Run predict in this fresh process and print its peak RSS as JSON."""
    model, _ = get_model(weights)
    img = test_image(size)
    tiles = []
    t = time.perf_counter()
    stop = (lambda: len(tiles) >= max_tiles) if max_tiles else None
    try:
        pred = predict(model, img, precision=precision, progress=lambda d, n: tiles.append((d, n)), should_stop=stop)
        tile = pred.metadata["tile"]
    except Exception as e:  # Cancelled after max_tiles
        tile = f"stopped ({type(e).__name__})"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "size": size,
                "megapixels": size * size / 1e6,
                "precision": precision,
                "peak_rss_mb": peak / 2**20,
                "seconds": time.perf_counter() - t,
                "tiles_done": len(tiles),
                "tiles_total": tiles[-1][1] if tiles else 0,
                "tile": tile,
            }
        )
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="side of the speed/accuracy image")
    ap.add_argument("--reps", type=int, default=2, help="repeats; the best time counts")
    ap.add_argument("--weights", default=next(iter(REGISTRY)))
    ap.add_argument("--rss-size", type=int, default=2048, help="side of the peak-RSS image (0: skip)")
    ap.add_argument("--rss-precision", default="auto")
    ap.add_argument("--rss-tiles", type=int, default=0, help="stop the RSS run after N tiles (0: whole image)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_size, args.weights, args.rss_precision, args.rss_tiles)
        return 0

    model, wname = get_model(args.weights)
    img = test_image(args.size)
    px = img.shape[0] * img.shape[1]
    gflop = 2 * MACS_PER_PX * px / 1e9
    results = {
        "image": list(img.shape),
        "weights": wname,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "runs": [],
    }
    peaks = {"cpu fp32": matmul_peak(torch.float32, "cpu"), "cpu bf16": matmul_peak(torch.bfloat16, "cpu")}
    for dev in available_devices():
        if dev.startswith("cuda"):
            for p, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
                peaks[f"cuda {p}"] = matmul_peak(dt, dev, n=8192, reps=20)
    results["matmul_peak_gflops"] = peaks

    t_plain, j_plain = plain_forward(model, img, args.reps)
    results["runs"].append(
        {
            "what": "plain forward (authors' way)",
            "device": "cpu",
            "precision": "fp32",
            "seconds": t_plain,
            "s_per_mp": t_plain / px * 1e6,
            "speedup": 1.0,
            "gflops": gflop / t_plain,
            "jnd_err_mean": 0.0,
            "jnd_err_max": 0.0,
        }
    )
    for dev in available_devices():
        precs = ["fp32", "bf16"] + (["fp16"] if dev.startswith("cuda") else [])
        for prec in precs:
            best, pred = float("inf"), None
            for _ in range(args.reps + (1 if dev != "cpu" else 0)):  # one warm-up on GPUs
                t = time.perf_counter()
                pred = predict(model, img, device=dev, precision=prec)
                sync(dev)
                best = min(best, time.perf_counter() - t)
            err = np.abs(pred.jnd - j_plain)
            results["runs"].append(
                {
                    "what": "predict",
                    "device": dev,
                    "precision": prec,
                    "seconds": best,
                    "s_per_mp": best / px * 1e6,
                    "speedup": t_plain / best,
                    "gflops": gflop / best,
                    "jnd_err_mean": float(err.mean()),
                    "jnd_err_max": float(err.max()),
                }
            )
    model.to("cpu")

    # tiled versus whole image, the real network, exact precision
    crop = img[:200, :200]
    whole = predict(model, crop, device="cpu", precision="fp32", tile=1000).jnd
    tiled = predict(model, crop, device="cpu", precision="fp32", tile=64).jnd
    results["tiled_vs_whole_max_jnd_diff"] = float(np.abs(whole - tiled).max())
    model.to("cpu")

    # fine-tuning throughput: batch of 8 patches of 64 x 64, forward + backward + Adam step
    ft = Path(__file__).with_name("bench_finetune.py")
    results["finetune"] = []
    for prec in ("fp32", "bf16"):
        out = subprocess.run(
            [sys.executable, str(ft), "--child", prec, "--weights", args.weights, "--steps", "4"],
            capture_output=True,
            text=True,
            check=True,
        )
        results["finetune"].append(json.loads(out.stdout.strip().splitlines()[-1]))

    if args.rss_size:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--rss-child",
                "--rss-size",
                str(args.rss_size),
                "--weights",
                args.weights,
                "--rss-precision",
                args.rss_precision,
                "--rss-tiles",
                str(args.rss_tiles),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results["tiled_rss"] = json.loads(out.stdout.strip().splitlines()[-1])

    print(
        f"\nResJND inference, {img.shape[1]} x {img.shape[0]} image, weights {wname}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'what':30} {'device':7} {'prec':5} {'s':>7} {'s/MP':>7} {'x plain':>8} {'GFLOP/s':>8} "
        f"{'JND err mean':>13} {'max':>6}"
    )
    for r in results["runs"]:
        print(
            f"{r['what']:30} {r['device']:7} {r['precision']:5} {r['seconds']:7.2f} {r['s_per_mp']:7.1f} "
            f"{r['speedup']:8.2f} {r['gflops']:8.1f} {r['jnd_err_mean']:13.4f} {r['jnd_err_max']:6.3f}"
        )
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    print(
        f"tiled (64 px tiles) versus whole image, 200 x 200, fp32: largest JND difference "
        f"{results['tiled_vs_whole_max_jnd_diff']:.2e} grey levels"
    )
    for r in results["finetune"]:
        print(
            f"fine-tuning {r['precision']}: {r['patches_per_s']:.2f} patches/s (batch 8 of 64 x 64), "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    if "tiled_rss" in results:
        r = results["tiled_rss"]
        print(
            f"tiled run, {r['megapixels']:.1f} MP, {r['precision']}: peak RSS {r['peak_rss_mb']:.0f} MiB, "
            f"{r['tiles_done']}/{r['tiles_total']} tiles of {r['tile']} px in {r['seconds']:.0f} s"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
