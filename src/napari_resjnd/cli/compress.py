"""`resjnd compress`: JND-guided coding, rate-distortion curves and BD-rate.

For every image: JND maps (computed, or read from ``--jnd-dir``), the pictures an
encoder is given (:mod:`~napari_resjnd.core.coding.prefilter`), a sweep of every codec and
quality in worker processes (:mod:`~napari_resjnd.core.coding.sweep`), scored against the
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

from ..core.coding.prefilter import map_of
from ..core.errors import ResJNDError
from ..core.files import atomic_write, atomic_write_all
from ..core.maps import DEFAULT_MODEL, MODELS, MapRequest, needs_weights
from ..core.weights import DEFAULT_WEIGHTS
from ._common import Command, UsageError, add_compute, exists, fail, out_folder
from ._types import nonnegative_float, positive_float, positive_int

log = logging.getLogger(__name__)

RD_COLUMNS = ["image", "jnd", "codec", "quality", "bytes", "bpp"]
BD_COLUMNS = ["codec", "jnd", "image", "metric", "bd_rate_percent", "overlap", "images", "note"]


def _request(args: argparse.Namespace, missing: list[str], model: Callable[[], Any]) -> MapRequest:
    """How the maps not found in ``--jnd-dir`` are computed (the model loaded on first need)."""
    loaded = model() if needs_weights(missing) else None
    return MapRequest(weights=args.weights, device=args.device, precision=args.precision, model=loaded)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})

    atomic_write(path, write)


def _one_image(args: argparse.Namespace, job: Any, model: Any, bar: Any, pool: Any) -> tuple[list[dict], list[dict]]:
    from ..core.coding.pipeline import Prefilter, check_image, iter_code_image, iter_pictures, read_map_dir
    from ..core.events import Encoded, drive
    from ..core.images import read_image

    image = read_image(job.source)
    check_image(image, str(job.source))
    given = read_map_dir(args.jnd_dir, job.stem, args.jnd_names, image.shape) if args.jnd_dir else None
    missing = [k for k in dict.fromkeys(map_of(n) for n in args.jnd_names) if given is None or k not in given]
    request = _request(args, missing, model)
    prefilter = Prefilter(args.lam, args.filter, args.sigma)
    pictures = drive(iter_pictures(image, args.jnd_names, request=request, given=given, prefilter=prefilter))

    def on_event(ev: object) -> None:
        if isinstance(ev, Encoded):
            bar.update(1)

    coded = drive(
        iter_code_image(
            pictures,
            args.codec_names,
            args.qualities,
            keep_streams=args.save_streams,
            pool=pool,
            method=args.interp,
        ),
        on_event,
    )
    points = coded.points
    out = Path(args.out)
    from ..core.codecs import CODECS

    rows = [
        {"image": job.source.name, "jnd": p.jnd, "codec": p.codec, "quality": p.quality, "bytes": p.size, "bpp": p.bpp}
        | p.metrics
        | {f"seconds_{k}": v for k, v in p.seconds.items()}
        for p in points
    ]
    bd = [r | {"image": job.source.name} for r in coded.bd]
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
    from ..core.coding.plots import rd_plot
    from ..core.coding.sweep import METRICS

    return lambda tmp: rd_plot(points, title, tmp, METRICS)


def cmd_compress(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.batch import list_jobs
    from ..core.codecs import CODECS
    from ..core.coding import bdrate, sweep

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
    pool = sweep.process_pool(args.workers) if args.workers > 1 else None
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
    extra = sorted({k for r in rows for k in r} - set(RD_COLUMNS) - set(sweep.METRICS))
    _write_csv(out / "rd.csv", rows, RD_COLUMNS + list(sweep.METRICS) + extra)
    means = bdrate.mean_rows(bd)
    _write_csv(out / "bd_rate.csv", bd + means, BD_COLUMNS)
    info = {
        "codecs": {c: CODECS[c].version() for c in args.codec_names},
        "qualities": args.qualities,
        "jnd": args.jnd_names,
        "prefilter": {"filter": args.filter, "sigma": args.sigma, "lambda": args.lam},
        "bd_rate_interpolation": bdrate.INTERPOLATIONS[args.interp],
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
    from ..core.coding.sweep import METRICS

    keys = list(dict.fromkeys((r["codec"], r["jnd"]) for r in means))
    table = {(r["codec"], r["jnd"], r["metric"]): r["bd_rate_percent"] for r in means}
    print("mean BD-rate (%, negative: fewer bits at equal score)")
    print(f"{'codec':6} {'jnd':14} " + " ".join(f"{m:>11}" for m in METRICS))
    for c, j in keys:
        print(f"{c:6} {j:14} " + " ".join(f"{table[(c, j, m)]:>11.2f}" for m in METRICS))


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd compress`."""
    from ..core.codecs import CODECS
    from ..core.coding.bdrate import INTERPOLATIONS
    from ..core.coding.prefilter import DEFAULT_FILTER, DEFAULT_LAMBDA, DEFAULT_SIGMA, FILTERS, RESJND_SMOOTH

    co = command(sub, "compress", help="JND-guided coding: rate-distortion curves and BD-rate per codec and JND model")
    co.add_argument("images", nargs="+", help="image files or folders")
    co.add_argument("--out", required=True, help="output folder: rd.csv, bd_rate.csv, codecs.json, streams/, plots/")
    co.add_argument(
        "--codec", default="jpeg,webp", help=f"comma-separated: {', '.join(CODECS)} or all (default: jpeg,webp)"
    )
    co.add_argument(
        "--jnd",
        default=f"{DEFAULT_MODEL},yang2005",
        help=f"comma-separated JND models: {DEFAULT_MODEL} (its CPL image is coded), {RESJND_SMOOTH} (its map "
        f"bounds the smoothing), the classic models ({', '.join(MODELS)}), or all (default: %(default)s)",
    )
    co.add_argument(
        "--quality",
        default=None,
        help="START:STOP:STEP (stop included) or a list, e.g. 20,40,60 (default: 10:90:10,95)",
    )
    co.add_argument("--weights", default=DEFAULT_WEIGHTS, help="ResJND weights: registry name or file")
    add_compute(co, training=False)
    co.add_argument("--jnd-dir", default=None, help="maps from `resjnd predict --out DIR/MODEL`, reused where present")
    co.add_argument("--filter", default=DEFAULT_FILTER, choices=list(FILTERS), help="low-pass filter S (smoothing)")
    co.add_argument("--sigma", type=positive_float, default=DEFAULT_SIGMA, help=f"its width (default: {DEFAULT_SIGMA})")
    co.add_argument(
        "--lambda",
        dest="lam",
        type=nonnegative_float,
        default=DEFAULT_LAMBDA,
        help=f"each pixel moves by at most lambda x JND (default: {DEFAULT_LAMBDA:g})",
    )
    co.add_argument("--interp", default="pchip", choices=list(INTERPOLATIONS), help="BD-rate interpolation")
    co.add_argument("--workers", type=positive_int, default=None, help="encoder processes (default: one per CPU)")
    co.add_argument("--save-streams", action="store_true", help="keep every stream in OUT/streams/")
    co.add_argument("--plot", action="store_true", help="RD plots in OUT/plots/ (PNG)")
    co.add_argument("--recursive", action="store_true", help="look into sub-folders of folder arguments")
    co.add_argument("-q", "--quiet", action="store_true")
    co.set_defaults(func=cmd_compress, check=_check_compress)


def _check_compress(args: argparse.Namespace) -> None:
    import os

    from ..core.codecs import CODECS, codec_names, parse_qualities
    from ..core.coding.prefilter import guided_names
    from ..core.errors import ResJNDError

    out_folder(args.out)
    earlier = [n for n in ("rd.csv", "bd_rate.csv", "codecs.json", "streams", "plots") if (Path(args.out) / n).exists()]
    if earlier:  # its streams and plots would mix with this run's: never a stale set beside a new one
        raise UsageError(
            f"--out {args.out} holds an earlier compress run's results ({', '.join(earlier)}); "
            "give a new or empty folder (nothing was written)"
        )
    from ..core.coding.bdrate import check_libraries

    try:
        check_libraries()
        args.codec_names = codec_names(args.codec)
        args.jnd_names = guided_names(args.jnd)
        given = parse_qualities(args.quality) if args.quality else None
    except ResJNDError as e:
        raise UsageError(str(e)) from None
    args.qualities = {c: list(given or CODECS[c].default_qualities) for c in args.codec_names}
    for c in args.codec_names:
        lo, hi = CODECS[c].quality_range
        bad = [q for q in args.qualities[c] if not lo <= q <= hi]
        if bad:
            raise UsageError(f"--quality: {c} takes {lo} to {hi}, got {bad[0]}")
    if args.jnd_dir:
        exists(args.jnd_dir, "--jnd-dir", folder=True)
    args.workers = args.workers or os.cpu_count() or 1
