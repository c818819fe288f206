"""Docs "JND-guided compression": the results table and the sweep benchmark.

    python benchmarks/compression.py results [--out bench-compress/] [--size 256] [--workers 2]
    python benchmarks/compression.py table [--out bench-compress/]   # again, from a finished run
    python benchmarks/compression.py bench [--workers 2]

``results``: the eight images of the results page (scikit-image's six colour photos and
OpenJND's actor and lighthouse from ``../shared/jnd-reference/inputs``), each cropped to
its central SIZE x SIZE pixels, through `resjnd compress` with every codec, ResJND (its
CPL image) and every classic model (JND-bounded smoothing), qualities 20:95:15; prints
the mean BD-rate table (Markdown).

``bench``: one 512 x 512 image (astronaut) x 5 codecs x 10 qualities x 3 JND maps
(ResJND, Yang 2005, Wu 2017), plus the plain codec; prints the wall time and where it goes.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from napari_resjnd.cli import main as cli

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
SHARED = Path(__file__).resolve().parents[2] / "shared"
OPENJND = Path(os.environ.get("RESJND_JND_REFERENCE_DIR", SHARED / "jnd-reference")) / "inputs"
AUTHORS = (
    Path(os.environ.get("RESJND_OFFICIAL_DIR", SHARED / "resjnd-official")) / "model_epoch_250_44.9119873046875.pth"
)
CODECS = "jpeg,webp,avif,heic,jxl"
METRICS = ("psnr", "ms_ssim", "ssimulacra2", "vifp", "gmsd")


def _weights(given: str | None) -> str:
    return given or (str(AUTHORS) if AUTHORS.is_file() else "resjnd-cplset")


def _crop(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y : y + size, x : x + size, :3]


def results(args: argparse.Namespace) -> int:
    out = Path(args.out)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    paths = []
    for key in PHOTOS:
        p = out / "photos" / f"{key}.png"
        Image.fromarray(_crop(getattr(data, key)(), args.size)).save(p)
        paths.append(str(p))
    for key in ("actor", "lighthouse"):
        src = OPENJND / f"{key}.png"
        if not src.is_file():
            print(f"{src} not found: coding without it", file=sys.stderr)
            continue
        p = out / "photos" / f"{key}.png"
        Image.fromarray(_crop(np.asarray(Image.open(src).convert("RGB")), args.size)).save(p)
        paths.append(str(p))
    t0 = time.perf_counter()
    run = ["compress", *paths, "--codec", CODECS, "--jnd", "all", "--quality", args.quality, "--out", str(out / "run")]
    run += ["--weights", _weights(args.weights), "--precision", args.precision, "--workers", str(args.workers)]
    rc = cli([*run, "--plot", "-q"])
    print(f"\n{len(paths)} images, {time.perf_counter() - t0:.0f} s wall")
    return rc or table(args)


def table(args: argparse.Namespace) -> int:
    """The Markdown table and the SSIMULACRA2 heat map of a finished run."""
    run = Path(args.out) / "run"
    print(markdown_means(run / "bd_rate.csv"))
    heatmap(run / "bd_rate.csv", run / "bd_ssimulacra2.png", "ssimulacra2")
    return 0


def heatmap(path: Path, png: Path, metric: str) -> None:
    """Mean BD-rate for one metric: JND models (rows) x codecs (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(path.read_text().splitlines()) if r["image"] == "mean" and r["metric"] == metric]
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    models = list(dict.fromkeys(r["jnd"] for r in rows))
    grid = np.full((len(models), len(codecs)), np.nan)
    for r in rows:
        grid[models.index(r["jnd"]), codecs.index(r["codec"])] = float(r["bd_rate_percent"])
    lim = np.nanmax(np.abs(grid)) if np.isfinite(grid).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.2 * len(codecs) + 2, 0.4 * len(models) + 1.2), constrained_layout=True)
    ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(len(models)):
        for j in range(len(codecs)):
            ax.text(j, i, "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:+.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(codecs)), codecs)
    ax.set_yticks(range(len(models)), models)
    ax.set_title(f"mean BD-rate (%) at equal {metric}; negative: bits saved", fontsize=9)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def markdown_means(path: Path) -> str:
    rows = [r for r in csv.DictReader(path.read_text().splitlines()) if r["image"] == "mean"]
    table = {(r["codec"], r["jnd"], r["metric"]): (float(r["bd_rate_percent"]), r["images"]) for r in rows}
    keys = list(dict.fromkeys((r["codec"], r["jnd"]) for r in rows))
    lines = ["| codec | JND model | " + " | ".join(METRICS) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for c, j in keys:
        cells = []
        for m in METRICS:
            v, n = table[(c, j, m)]
            cells.append("n/a" if not math.isfinite(v) else f"{v:+.1f}" + ("" if n == "8" else f" ({n})"))
        lines.append(f"| {c} | {j} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench(args: argparse.Namespace) -> int:
    from napari_resjnd.core.codecs import CODECS as ALL
    from napari_resjnd.core.coding import bdrate, sweep
    from napari_resjnd.core.coding.prefilter import compute_maps, guided_pictures
    from napari_resjnd.core.events import drive
    from napari_resjnd.core.maps import MapRequest
    from napari_resjnd.core.weights import load_model

    image = data.astronaut()
    models = ["resjnd", "yang2005", "wu2017"]
    qualities = {c: list(range(10, 101, 10)) for c in ALL}
    t0 = time.perf_counter()
    model = load_model(_weights(args.weights))
    t1 = time.perf_counter()
    maps: dict = {}
    seconds_maps = {}
    request = MapRequest(precision=args.precision, model=model)
    for m in models:
        t = time.perf_counter()
        maps.update(compute_maps(image, [m], request))
        seconds_maps[m] = time.perf_counter() - t
    pictures = guided_pictures(image, models, maps=maps)
    t2 = time.perf_counter()
    with sweep.process_pool(args.workers) as pool:
        points = drive(sweep.iter_sweep(image, pictures, list(ALL), qualities, pool=pool))
    t3 = time.perf_counter()
    bd = bdrate.bd_rows(points)
    t4 = time.perf_counter()
    cpu: dict[str, float] = {}
    for p in points:
        for k, v in p.seconds.items():
            cpu[k] = cpu.get(k, 0.0) + v
    per_codec = {c: sum(p.seconds["encode"] + p.seconds["decode"] for p in points if p.codec == c) for c in ALL}
    print(f"512 x 512 astronaut, {len(points)} streams ({len(ALL)} codecs x 10 qualities x {len(pictures)} pictures)")
    print(f"weights loaded {t1 - t0:.1f} s; maps {', '.join(f'{k} {v:.1f} s' for k, v in seconds_maps.items())}")
    print(f"sweep wall {t3 - t2:.1f} s on {args.workers} processes; BD-rates {t4 - t3:.2f} s; total {t4 - t0:.1f} s")
    total = sum(cpu.values())
    print(f"sweep CPU time {total:.1f} s, by stage:")
    for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {k:12} {v:7.1f} s  {100 * v / total:4.1f} %")
    print("encode + decode by codec: " + ", ".join(f"{c} {v:.1f} s" for c, v in per_codec.items()))
    print(f"{len(bd)} BD-rates")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("results")
    r.add_argument("--out", default="bench-compress")
    r.add_argument("--size", type=int, default=256)
    r.add_argument("--quality", default="20:95:15")
    t = sub.add_parser("table", help="the table and heat map of a finished `results` run")
    t.add_argument("--out", default="bench-compress")
    b = sub.add_parser("bench")
    for p in (r, b):
        p.add_argument("--workers", type=int, default=2)
        p.add_argument(
            "--weights", default=None, help="default: the authors' checkpoint in ../shared, else the registry"
        )
        p.add_argument("--precision", default="auto")
    args = ap.parse_args()
    return {"results": results, "table": table, "bench": bench}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
