"""Fine-tuning throughput and memory: patches per second and peak RSS for a batch
of 8 patches of 64 x 64, fp32 and bf16, and the validation curve of a short run.

    python benchmarks/bench_finetune.py [--weights resjnd-cplset] [--steps 6] [--json out.json]

Each precision runs in a fresh process so its peak RSS is its own. Training data:
scikit-image photos paired with JPEG (quality 20) versions as targets.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time

import numpy as np


def pairs():
    from PIL import Image
    from skimage import data

    from napari_resjnd.core.training.pairs import make_pair

    out = []
    for key in ("astronaut", "coffee", "chelsea", "rocket"):
        img = getattr(data, key)()
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=20)
        out.append(make_pair(img, np.asarray(Image.open(buf)), key))
    return out


def child(weights: str, precision: str, steps: int) -> None:
    import torch

    from napari_resjnd import load_model
    from napari_resjnd.core.devices import autocast
    from napari_resjnd.core.training.finetune import _tensors
    from napari_resjnd.core.training.pairs import PatchIndex

    model = load_model(weights).train()
    model.to(memory_format=torch.channels_last)
    ps = pairs()
    rng = np.random.default_rng(0)
    idx = [
        PatchIndex(int(rng.integers(len(ps))), int(rng.integers(0, 200)), int(rng.integers(0, 200)))
        for _ in range(8 * (steps + 1))
    ]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    dev = torch.device("cpu")
    times = []
    for s in range(steps + 1):  # the first step warms up
        x, y = _tensors(ps, idx[8 * s : 8 * s + 8], 64, dev)
        t = time.perf_counter()
        with autocast(dev, precision):
            loss = torch.mean((model(x).float() - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "precision": precision,
                "patches_per_s": 8 / np.median(times[1:]),
                "peak_rss_mib": peak,
                "step_s": float(np.median(times[1:])),
            }
        )
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="resjnd-cplset")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=4, help="epochs of the short validation-curve run")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.weights, args.child, args.steps)
        return 0
    res = {"throughput": []}
    for prec in ("fp32", "bf16"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", prec, "--weights", args.weights, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        res["throughput"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    import tempfile

    from napari_resjnd import FinetuneConfig, finetune, load_model

    cfg = FinetuneConfig(epochs=args.epochs, patch=48, batch=8, precision="auto", device="cpu", patience=0)
    with tempfile.TemporaryDirectory() as d:
        r = finetune(load_model(args.weights), pairs(), f"{d}/ft.safetensors", cfg)
    res["curve"] = r.history["epochs"]
    res["curve_setup"] = {"precision": r.history["precision"], **r.history["data"]}
    for t in res["throughput"]:
        print(
            f"{t['precision']:5}: {t['patches_per_s']:.2f} patches/s (batch 8 of 64 x 64, forward + backward "
            f"+ Adam step), peak RSS {t['peak_rss_mib']:.0f} MiB"
        )
    print(
        f"short run ({r.history['precision']}, {res['curve_setup']['train_patches']} training / "
        f"{res['curve_setup']['val_patches']} validation patches of 48 px, Adam 1e-4):"
    )
    for e in res["curve"]:
        tr = "-" if e["train_loss"] is None else f"{e['train_loss']:.4e}"
        print(f"  epoch {e['epoch']}: train {tr}  val {e['val_loss']:.4e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
