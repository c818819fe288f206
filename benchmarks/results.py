"""Docs "Evaluation and results": `resjnd evaluate --jnd all,uniform,shuffled` with
the authors' weights on scikit-image's colour photographs and the two OpenJND test
images (actor, lighthouse: top-left 256 x 256 grey crops), at 26 and 30 dB, in fp32.

    python benchmarks/results.py [--out bench-results/] [--precision fp32] [--openjnd DIR]

``--openjnd``: OpenJND's ``test_data`` folder (https://github.com/Terriao/OpenJND), or a
folder already holding ``actor.png`` and ``lighthouse.png`` crops (default: the
project's ``../shared/jnd-reference/inputs``); without either, the six photos alone.
Writes the photos as PNG, then runs `resjnd evaluate` on them (CSV, Markdown
summary with the paired statistics, quality plot) and prints the per-map means.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from napari_resjnd.cli import main as cli

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
OPENJND = Path(__file__).resolve().parents[2] / "shared" / "jnd-reference" / "inputs"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--precision", default="fp32", help="fp32: the published table (exact maps)")
    ap.add_argument("--openjnd", type=Path, default=OPENJND, help="OpenJND's test_data folder (actor, lighthouse)")
    ap.add_argument("--weights", default="resjnd-cplset")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    paths = []
    for key in PHOTOS:
        img = getattr(data, key)()[..., :3]
        p = out / "photos" / f"{key}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    for key in ("actor", "lighthouse"):
        found = [args.openjnd / f"{key}{ext}" for ext in (".png", ".bmp") if (args.openjnd / f"{key}{ext}").is_file()]
        if not found:
            print(f"{args.openjnd / key}.png not found: evaluating without it", file=sys.stderr)
            continue
        grey = np.asarray(Image.open(found[0]).convert("L"))[:256, :256]  # as the reference maps were made
        p = out / "photos" / f"{key}.png"
        Image.fromarray(grey).save(p)
        paths.append(str(p))
    rc = cli(
        [
            "evaluate",
            *paths,
            "--jnd",
            "all,uniform,shuffled",
            "--psnr",
            "26",
            "--psnr",
            "30",
            "--out",
            str(out / "results.csv"),
            "--weights",
            args.weights,
            "--precision",
            args.precision,
            "--plot",
            str(out / "quality.png"),
        ]
    )
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    metrics = ["ssim", "ms_ssim", "vifp", "gmsd", "pspnr"]
    print("\n| target PSNR | JND map | " + " | ".join(metrics) + " |")
    print("| ---: | --- | " + " | ".join("---:" for _ in metrics) + " |")
    for t in ("26.0", "30.0"):
        for j in dict.fromkeys(r["jnd"] for r in rows):
            sel = [r for r in rows if r["jnd"] == j and r["target_psnr"] == t]
            means = [np.nanmean([float(r[m]) for r in sel]) for m in metrics]
            print(f"| {float(t):g} | {j} | " + " | ".join(f"{v:.4f}" for v in means) + " |")
    return rc


if __name__ == "__main__":
    sys.exit(main())
