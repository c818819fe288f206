"""1-process versus 2-process (torchrun, gloo) CPU training: step time and history parity.

    python benchmarks/bench_ddp.py [--channels 64] [--epochs 2]

Makes 16 synthetic 64 x 64 pairs, trains the same run both ways, prints seconds
per step and the largest relative difference between the two loss histories.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--recursions", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "pairs"
        rng = np.random.default_rng(0)
        for sub in ("data", "label"):
            (root / sub).mkdir(parents=True)
        for i in range(20):
            x = ndimage.gaussian_filter(rng.uniform(0, 255, (64, 64, 3)), (1.5, 1.5, 0))
            Image.fromarray(x.round().astype(np.uint8)).save(root / "data" / f"{i}.png")
            Image.fromarray(ndimage.gaussian_filter(x, (0.8, 0.8, 0)).round().astype(np.uint8)).save(
                root / "label" / f"{i}.png"
            )
        common = [
            "train",
            "--pairs",
            str(root),
            "--channels",
            str(a.channels),
            "--recursions",
            str(a.recursions),
            "--preset",
            "finetune",
            "--batch",
            "8",
            "--patch",
            "48",
            "--val-fraction",
            "0.2",
            "--val-every",
            "1",
            "--workers",
            "1",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--epochs",
            str(a.epochs),
        ]
        runs = {}
        for procs in (1, 2):
            out = Path(d) / f"p{procs}" / "ck.safetensors"
            cmd = [sys.executable, "-m", "napari_resjnd.cli", *common, "--out", str(out)]
            if procs > 1:
                cmd = [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--nproc_per_node",
                    str(procs),
                    "-m",
                    "napari_resjnd.cli",
                    *common,
                    "--out",
                    str(out),
                ]
            subprocess.run(cmd, check=True, capture_output=True, env={**os.environ})
            runs[procs] = json.loads(out.with_suffix(".json").read_text())
        steps = 2  # 16 training pairs / global batch 8
        for procs, h in runs.items():
            secs = [e["seconds"] for e in h["epochs"][1:]]
            print(
                f"{procs} process(es): {np.mean(secs) / steps:.2f} s per step of 8 patches of 48 px "
                f"({a.channels} channels, {a.recursions} recursions)"
            )
        diffs = [
            abs(e2[k] - e1[k]) / abs(e1[k])
            for e1, e2 in zip(runs[1]["epochs"], runs[2]["epochs"])
            for k in ("train_loss", "val_loss")
            if e1[k] is not None
        ]
        print(f"history parity: largest relative difference {max(diffs):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
