"""Prediction throughput on a folder of 50 small images, with and without the I/O pipeline.

python benchmarks/bench_batch.py [--n 50] [--size 96] [--weights resjnd-cplset]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data

from napari_resjnd.cli import main as cli


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--weights", default="resjnd-cplset")
    a = ap.parse_args()
    src = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "in"
        folder.mkdir()
        for i in range(a.n):
            img = src[i % 4]
            y, x = (i * 37) % (img.shape[0] - a.size), (i * 53) % (img.shape[1] - a.size)
            Image.fromarray(img[y : y + a.size, x : x + a.size]).save(folder / f"{i:03d}.png")
        for flag in ([], ["--no-pipeline"], []):  # the first run warms up
            out = Path(d) / ("plain" if flag else "pipe")
            cli(["predict", str(folder), "--out", str(out), "--weights", a.weights, "-q", *flag])
            s = json.loads((out / "summary.json").read_text())
            print(
                f"{'without' if flag else 'with'} pipeline: {a.n / s['seconds']:.2f} images/s "
                f"({s['seconds']:.1f} s for {a.n} images of {a.size} x {a.size})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
