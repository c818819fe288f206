"""`resjnd compress`: JND-guided coding, rate-distortion curves and BD-rate.

For every image: JND maps (computed, or read from ``--jnd-dir``), the pictures an
encoder is given (:mod:`~napari_resjnd.core.coding.prefilter`), a sweep of every codec and
quality in worker processes (:mod:`~napari_resjnd.core.coding.rd`), scored against the
original. Writes ``rd.csv``, ``bd_rate.csv``, ``codecs.json`` and, on request, the
streams and RD plots; every file atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ResJNDError
from ..core.files import atomic_write, atomic_write_all
from ._common import fail

log = logging.getLogger(__name__)

RD_COLUMNS = ["image", "jnd", "codec", "quality", "bytes", "bpp"]
BD_COLUMNS = ["codec", "jnd", "image", "metric", "bd_rate_percent", "overlap", "images", "note"]


def _read_map(folder: Path, stem: str, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(JND map, CPL image) of ``stem`` written by ``resjnd predict --out folder/name``; Nones when absent."""
    import tifffile

    from ..core.images import read_image

    base = folder / name
    jnd_file = base / f"{stem}_jnd.tif"
    if not jnd_file.is_file():
        return None, None
    jnd = np.asarray(tifffile.imread(jnd_file), np.float32)
    cpl_file = base / f"{stem}_cpl.png"
    cpl = read_image(cpl_file).astype(np.float32) / 255 if cpl_file.is_file() else None
    return jnd, cpl


def _maps(args: argparse.Namespace, image: np.ndarray, stem: str, names: list[str], model: Any) -> tuple:
    """JND maps and the CPL image: from ``--jnd-dir`` where present, else computed."""
    from ..core.coding.prefilter import RESJND_SMOOTH, compute_maps

    keys = list(dict.fromkeys("resjnd" if n == RESJND_SMOOTH else n for n in names))
    maps: dict[str, np.ndarray] = {}
    cpl = None
    if args.jnd_dir:
        for key in keys:
            jnd, c = _read_map(Path(args.jnd_dir), stem, key)
            if jnd is None:
                continue
            if jnd.shape != image.shape[:2]:
                where = Path(args.jnd_dir) / key / f"{stem}_jnd.tif"
                raise ResJNDError(f"{where}: the map is {jnd.shape}, the image {image.shape[:2]}")
            if key == "resjnd" and "resjnd" in names and c is None:
                continue  # the CPL image is needed too: compute both
            maps[key], cpl = jnd, c if key == "resjnd" else cpl
    missing = [k for k in keys if k not in maps]
    if missing:
        computed, c = compute_maps(
            image, missing, model=model() if "resjnd" in missing else None, device=args.device, precision=args.precision
        )
        maps.update(computed)
        cpl = c if c is not None else cpl
    return maps, cpl


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})

    atomic_write(path, write)


def _one_image(args: argparse.Namespace, job: Any, model: Any, bar: Any, pool: Any) -> tuple[list[dict], list[dict]]:
    from ..core.coding import rd
    from ..core.coding.prefilter import guided_pictures
    from ..core.events import Encoded, drive
    from ..core.images import read_image

    image = read_image(job.source)
    if (image.ndim == 3 and image.shape[2] not in (3, 4)) or image.ndim not in (2, 3):
        raise ResJNDError(f"{job.source}: expected one 2-D grey or colour image, got shape {image.shape}")
    maps, cpl = _maps(args, image, job.stem, args.jnd_names, model)
    pictures = guided_pictures(
        image, args.jnd_names, maps=maps, cpl=cpl, lam=args.lam, filter_name=args.filter, sigma=args.sigma
    )
    original = pictures["none"]

    def on_event(ev: object) -> None:
        if isinstance(ev, Encoded):
            bar.update(1)

    points = drive(
        rd.iter_sweep(original, pictures, args.codec_names, args.qualities, keep_streams=args.save_streams, pool=pool),
        on_event,
    )
    out = Path(args.out)
    from ..core.codecs import CODECS

    rows = [
        {"image": job.source.name, "jnd": p.jnd, "codec": p.codec, "quality": p.quality, "bytes": p.size, "bpp": p.bpp}
        | p.metrics
        | {f"seconds_{k}": v for k, v in p.seconds.items()}
        for p in points
    ]
    bd = [r | {"image": job.source.name} for r in rd.bd_rows(points, method=args.interp)]
    files: list[tuple[Path, Callable[[str], object]]] = []  # this image's streams and plots: all or none
    if args.save_streams:
        for p in points:
            target = out / "streams" / job.stem / p.codec / p.jnd / f"q{p.quality}.{CODECS[p.codec].ext}"
            files.append((target, _bytes_writer(p.stream or b"")))
    if args.plot:
        for c in args.codec_names:
            mine = [p for p in points if p.codec == c]
            title = f"{job.source.name}: {CODECS[c].title}"
            files.append((out / "plots" / f"{job.stem}_{c}.png", _plot_writer(mine, title)))
    atomic_write_all(files)
    return rows, bd


def _bytes_writer(data: bytes) -> Callable[[str], object]:
    return lambda tmp: Path(tmp).write_bytes(data)


def _plot_writer(points: list, title: str) -> Callable[[str], None]:
    from ..core.coding.rd import METRICS
    from ..core.research.plots import rd_plot

    return lambda tmp: rd_plot(points, title, tmp, METRICS)


def cmd_compress(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.batch import list_jobs
    from ..core.codecs import CODECS
    from ..core.coding import rd

    jobs = list_jobs(args.images, args.out, recursive=args.recursive)
    loaded: list[Any] = []

    def model() -> Any:  # loaded on first need: maps from --jnd-dir may make it unneeded
        if not loaded:
            from ..core.weights import load_model

            loaded.append(load_model(args.weights))
        return loaded[0]

    per_image = sum(len(args.qualities[c]) for c in args.codec_names) * (len(args.jnd_names) + 1)
    bar = tqdm(total=per_image * len(jobs), unit="stream", disable=args.quiet)
    rows: list[dict] = []
    bd: list[dict] = []
    failed = 0
    pool = rd.process_pool(args.workers) if args.workers > 1 else None
    try:
        for job in jobs:
            try:
                r, b = _one_image(args, job, model, bar, pool)
            except (ResJNDError, OSError, MemoryError) as e:  # a bad file: say so, go on
                failed += 1
                tqdm.write(f"resjnd: skipping {job.source}: {e}", file=sys.stderr)
                continue
            rows += r
            bd += b
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not rows:
        return fail("no image could be coded")
    out = Path(args.out)
    extra = sorted({k for r in rows for k in r} - set(RD_COLUMNS) - set(rd.METRICS))
    _write_csv(out / "rd.csv", rows, RD_COLUMNS + list(rd.METRICS) + extra)
    means = rd.mean_rows(bd)
    _write_csv(out / "bd_rate.csv", bd + means, BD_COLUMNS)
    info = {
        "codecs": {c: CODECS[c].version() for c in args.codec_names},
        "qualities": args.qualities,
        "jnd": args.jnd_names,
        "prefilter": {"filter": args.filter, "sigma": args.sigma, "lambda": args.lam},
        "bd_rate_interpolation": rd.INTERPOLATIONS[args.interp],
        "weights": loaded[0].provenance.weights if loaded else None,
        "images": len(jobs) - failed,
        "failed": failed,
    }
    text = json.dumps(info, indent=2)
    atomic_write(out / "codecs.json", lambda tmp: Path(tmp).write_text(text))
    if not args.quiet:
        _print_means(means)
        print(f"{len(jobs) - failed} images coded, {failed} failed; results in {out}")
    return 1 if failed else 0


def _print_means(means: list[dict]) -> None:
    """Mean BD-rate per codec and JND model, one column per metric."""
    from ..core.coding.rd import METRICS

    keys = list(dict.fromkeys((r["codec"], r["jnd"]) for r in means))
    table = {(r["codec"], r["jnd"], r["metric"]): r["bd_rate_percent"] for r in means}
    print("mean BD-rate (%, negative: fewer bits at equal score)")
    print(f"{'codec':6} {'jnd':14} " + " ".join(f"{m:>11}" for m in METRICS))
    for c, j in keys:
        print(f"{c:6} {j:14} " + " ".join(f"{table[(c, j, m)]:>11.2f}" for m in METRICS))
