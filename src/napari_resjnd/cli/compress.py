"""`resjnd compress`: JND-guided coding, rate-distortion curves and BD-rate.

For every image: JND maps (computed, or read from ``--jnd-dir``), the pictures an
encoder is given (:mod:`~napari_resjnd.core.coding.prefilter`), a sweep of every codec and
quality in worker processes (:mod:`~napari_resjnd.core.coding.sweep`), scored against the
original. Writes ``rd.csv``, ``bd_rate.csv``, ``codecs.json`` and, on request, the
streams and RD plots; every file atomically.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.coding.prefilter import map_of
from ..core.errors import ResJNDError
from ..core.maps import DEFAULT_MODEL, MODELS, MapRequest, needs_weights
from ..core.weights import DEFAULT_WEIGHTS
from ._common import Command, UsageError, add_compute, exists, fail, out_folder
from ._types import nonnegative_float, positive_float, positive_int

log = logging.getLogger(__name__)

#: Held while this process writes into --out: a second run into the same folder is refused.
LOCK = ".resjnd-compress.lock"


def _request(args: argparse.Namespace, missing: list[str], model: Callable[[], Any]) -> MapRequest:
    """How the maps not found in ``--jnd-dir`` are computed (the model loaded on first need)."""
    loaded = model() if needs_weights(missing) else None
    return MapRequest(weights=args.weights, device=args.device, precision=args.precision, model=loaded)


def _where(job: Any, out: Path) -> tuple[str, Path]:
    """An image's name in the tables (its path below the input root, so that ``a/x.png``
    and ``b/x.png`` never mix) and the base of its files (streams, plots, and maps in
    ``--jnd-dir``, as ``resjnd predict`` names them: the sub-folder and the stem)."""
    rel = job.out_dir.relative_to(out)
    return (rel / job.source.name).as_posix(), rel / job.stem


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"resjnd: {line}", file=sys.stderr)


def _one_image(args: argparse.Namespace, job: Any, model: Any, bar: Any, pool: Any) -> tuple[list[dict], list[dict]]:
    from ..core.codecs import CODECS
    from ..core.coding.pipeline import Prefilter, check_image, iter_code_image, iter_pictures, read_map_dir
    from ..core.events import Encoded, drive
    from ..core.images import read_image

    out = Path(args.out)
    name, base = _where(job, out)
    image = read_image(job.source)
    check_image(image, str(job.source))
    given: dict = {}
    if args.jnd_dir:
        given, lines = read_map_dir(args.jnd_dir, base, args.jnd_names, image, args.weights_sha256)
        for line in lines:
            _say(line)
    missing = [k for k in dict.fromkeys(map_of(n) for n in args.jnd_names) if k not in given]
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
            metrics=args.scoring.metrics,
            keep_streams=args.save_streams,
            pool=pool,
            method=args.interp,
        ),
        on_event,
    )
    for metric, why in coded.notes.items():
        if metric not in args.said:  # once per run; bd_rate.csv notes it for every image
            args.said.add(metric)
            _say(f"{name}: {why}")
    points = coded.points
    rows = [
        {"image": name, "jnd": p.jnd, "codec": p.codec, "quality": p.quality, "bytes": p.size, "bpp": p.bpp}
        | p.metrics
        | {f"seconds_{k}": v for k, v in p.seconds.items()}
        for p in points
    ]
    bd = [r | {"image": name} for r in coded.bd]
    files: list[tuple[Path, Callable[[str], object]]] = []  # this image's streams and plots: all or none
    if args.save_streams:
        for p in points:
            target = out / "streams" / base / p.codec / p.jnd / f"q{p.quality}.{CODECS[p.codec].ext}"
            files.append((target, _bytes_writer(p.stream or b"")))
    if args.plot:
        for c in args.codec_names:
            mine = [p for p in points if p.codec == c]
            title = f"{name}: {CODECS[c].title}"
            files.append((out / "plots" / base.parent / f"{base.name}_{c}.png", _plot_writer(mine, title, args)))
    from ..core.files import atomic_write_all

    atomic_write_all(files)
    return rows, bd


def _bytes_writer(data: bytes) -> Callable[[str], object]:
    return lambda tmp: Path(tmp).write_bytes(data)


def _plot_writer(points: list, title: str, args: argparse.Namespace) -> Callable[[str], None]:
    from ..core.coding.plots import rd_plot

    return lambda tmp: rd_plot(points, title, tmp, tuple(args.scoring.metrics))


def cmd_compress(args: argparse.Namespace) -> int:
    try:
        return _compress(args)
    finally:
        _unlock(args)


def _compress(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.batch import list_jobs
    from ..core.coding import results, sweep

    out = Path(args.out)
    skipped: list[Path] = []
    jobs = list_jobs(args.images, args.out, recursive=args.recursive, skipped=skipped)
    for folder in skipped:
        _say(f"compress: left out {folder}: an earlier resjnd run's results")
    done = results.Results(args.settings) if args.earlier is None else args.earlier
    todo = [j for j in jobs if _where(j, out)[0] not in done.done]
    if args.earlier is not None and not args.quiet:
        print(f"resuming: {len(done.done)} images done, {len(todo)} to code")
    loaded: list[Any] = []

    def model() -> Any:  # loaded on first need: maps from --jnd-dir may make it unneeded
        if not loaded:
            from ..core.weights import load_model

            loaded.append(load_model(args.weights))
        return loaded[0]

    per_image = sum(len(args.qualities[c]) for c in args.codec_names) * (len(args.jnd_names) + 1)
    bar = tqdm(total=per_image * len(todo), unit="stream", disable=args.quiet)
    pool = sweep.process_pool(min(args.workers, per_image)) if args.workers > 1 and todo else None
    try:
        for job in todo:
            name = _where(job, out)[0]
            try:
                r, b = _one_image(args, job, model, bar, pool)
            except (ResJNDError, OSError, MemoryError) as e:  # this image's failure: say so, go on
                done.failed[name] = str(e)
                _say(f"skipping {job.source}: {e}")
                continue
            done.add(name, r, b)
    except KeyboardInterrupt:
        bar.close()
        _interrupted(args, done, loaded, len(jobs))
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not done.done:
        return fail("no image could be coded")
    done.write(out, args.scoring.metrics, _info(args, loaded), complete=True)
    if not args.quiet:
        _print_means(done.means(), args.scoring.metrics)
        print(f"{len(done.done)} images coded, {len(done.failed)} failed; results in {out}")
    return 1 if done.failed else 0


def _interrupted(args: argparse.Namespace, done: Any, loaded: list[Any], total: int) -> None:
    """Ctrl-C: the finished images' tables written, and what a rerun does."""
    out = Path(args.out)
    if not done.done:
        print(f"resjnd: compress: no image was finished; nothing written in {out}", file=sys.stderr)
        return
    done.write(out, args.scoring.metrics, _info(args, loaded), complete=False)
    left = total - len(done.done)
    print(
        f"resjnd: compress: {len(done.done)} of {total} images finished, their tables written in {out}; "
        f"the same command with --resume codes the other {left}",
        file=sys.stderr,
    )


def _info(args: argparse.Namespace, loaded: list[Any]) -> dict[str, Any]:
    """What codecs.json records beside the settings: the libraries, the weights, what was left out."""
    from ..core.codecs import CODECS
    from ..core.coding import bdrate

    info: dict[str, Any] = {
        "codecs": {c: CODECS[c].version() for c in args.codec_names},
        "bd_rate_interpolation": bdrate.INTERPOLATIONS[args.interp],
        "weights": loaded[0].provenance.weights if loaded else args.recorded_weights,
        "left_out": args.scoring.left_out,
    }
    return info


def _print_means(means: list[dict], metrics: tuple[str, ...]) -> None:
    """Mean BD-rate per codec and JND model, one column per metric."""
    if not means:
        return
    keys = list(dict.fromkeys((r["codec"], r["jnd"]) for r in means))
    table = {(r["codec"], r["jnd"], r["metric"]): r["bd_rate_percent"] for r in means}
    print("mean BD-rate (%, negative: fewer bits at equal score)")
    print(f"{'codec':6} {'jnd':14} " + " ".join(f"{m:>11}" for m in metrics))
    for c, j in keys:
        print(f"{c:6} {j:14} " + " ".join(f"{table[(c, j, m)]:>11.2f}" for m in metrics))


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd compress`."""
    from ..core.codecs import CODECS
    from ..core.coding.bdrate import INTERPOLATIONS
    from ..core.coding.prefilter import (
        DEFAULT_FILTER,
        DEFAULT_LAMBDA,
        DEFAULT_SIGMA,
        FILTERS,
        MAX_SIGMA,
        RESJND_SMOOTH,
    )

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
    co.add_argument(
        "--jnd-dir",
        default=None,
        help="maps from `resjnd predict --out DIR/MODEL` on the same inputs (sub-folders kept), reused where "
        "their records match the image (its sha256), the model and the size; computed where not",
    )
    co.add_argument("--filter", default=DEFAULT_FILTER, choices=list(FILTERS), help="low-pass filter S (smoothing)")
    co.add_argument(
        "--sigma",
        type=positive_float,
        default=DEFAULT_SIGMA,
        help=f"its width in px, at most {MAX_SIGMA:g} (default: {DEFAULT_SIGMA})",
    )
    co.add_argument(
        "--lambda",
        dest="lam",
        type=nonnegative_float,
        default=DEFAULT_LAMBDA,
        help=f"each pixel moves by at most lambda x JND (default: {DEFAULT_LAMBDA:g})",
    )
    co.add_argument("--interp", default="pchip", choices=list(INTERPOLATIONS), help="BD-rate interpolation")
    co.add_argument(
        "--workers", type=positive_int, default=None, help="encoder processes (default, and at most: one per CPU)"
    )
    co.add_argument("--save-streams", action="store_true", help="keep every stream in OUT/streams/")
    co.add_argument("--plot", action="store_true", help="RD plots in OUT/plots/ (PNG)")
    co.add_argument("--recursive", action="store_true", help="look into sub-folders of folder arguments")
    co.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run in --out (the same settings): code only the images not done",
    )
    co.add_argument("-q", "--quiet", action="store_true")
    co.set_defaults(func=cmd_compress, check=_check_compress)


def _check_compress(args: argparse.Namespace) -> None:
    from ..core.codecs import CODECS, codec_names, parse_qualities
    from ..core.coding.pipeline import scoring
    from ..core.coding.prefilter import MAX_SIGMA, guided_names

    out_folder(args.out)
    try:
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
    if args.sigma > MAX_SIGMA:
        raise UsageError(f"--sigma {args.sigma:g}: the filter's width must be at most {MAX_SIGMA:g} px")
    if args.jnd_dir:
        exists(args.jnd_dir, "--jnd-dir", folder=True)
    args.scoring = scoring()
    if args.scoring.notice() and not args.quiet:  # a missing optional library: one notice, not a refusal
        print(f"resjnd: compress: {args.scoring.notice()}", file=sys.stderr)
    args.workers = _workers(args.workers, args.quiet)
    args.weights_sha256 = _weights_sha256(args.weights) if needs_weights([map_of(n) for n in args.jnd_names]) else None
    args.settings = _settings(args)
    args.said = set()
    _lock(args)
    try:
        args.earlier, args.recorded_weights = _earlier_run(args)
    except BaseException:
        _unlock(args)
        raise


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a resumed run must share with the run it finishes (as codecs.json records it)."""
    from ..core.files import strict

    settings = {
        "codecs": args.codec_names,
        "qualities": args.qualities,
        "jnd": args.jnd_names,
        "prefilter": {"filter": args.filter, "sigma": args.sigma, "lambda": args.lam},
        "interpolation": args.interp,
        "weights": args.weights if needs_weights([map_of(n) for n in args.jnd_names]) else None,
        "metrics": list(args.scoring.metrics),
        "bd_rate": args.scoring.bd_rate,
        "save_streams": args.save_streams,
        "plot": args.plot,
    }
    return strict(settings)  # type: ignore[return-value]


def _earlier_run(args: argparse.Namespace) -> tuple[Any, str | None]:
    """An earlier run's results in --out: refused (nothing mixes with them), or with
    --resume read back to be finished with the same settings."""
    from ..core.coding import results

    try:
        found = results.earlier(Path(args.out), args.settings, args.resume)
    except ResJNDError as e:
        raise UsageError(str(e)) from None
    return found, (found.recorded_weights if found is not None else None)


def _workers(asked: int | None, quiet: bool) -> int:
    """Encoder processes: one per CPU by default, and never more than the CPUs."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if asked is not None and asked > cpus and not quiet:
        print(f"resjnd: compress: --workers {asked}: {cpus} encoder processes, one per CPU here", file=sys.stderr)
    return min(asked or cpus, cpus)


def _weights_sha256(weights: str) -> str | None:
    """The sha256 of the weights a learned map must have been made with: a registry
    entry's, or a file's (None: not known before loading)."""
    from ..core.weights import REGISTRY, sha256_of

    if weights in REGISTRY:
        return REGISTRY[weights].sha256
    path = Path(weights).expanduser()
    return sha256_of(path) if path.is_file() else None


def _lock(args: argparse.Namespace) -> None:
    """Hold --out for this run: a second compress into the same folder is refused, not mixed."""
    from ..core.files import hold_folder

    try:
        args.lock = hold_folder(Path(args.out), LOCK)
    except ResJNDError:
        raise UsageError(
            f"--out {args.out}: another resjnd compress is writing there; wait for it to end, or give another folder"
        ) from None


def _unlock(args: argparse.Namespace) -> None:
    release = getattr(args, "lock", None)
    if release is not None:
        release()
        args.lock = None
