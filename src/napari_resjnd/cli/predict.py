"""`resjnd predict` (files and folders to JND maps) and `resjnd gui`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ResJNDError
from ..core.maps import ALIASES, DEFAULT_MODEL, MODELS
from ..core.outputs import write_outputs
from ..core.weights import DEFAULT_WEIGHTS, known_weights
from ._common import Command, add_compute, fail, out_folder
from ._types import positive_int

if TYPE_CHECKING:
    from ..core.model import ResJND

__all__ = ["add_commands", "cmd_gui", "cmd_predict", "write_outputs"]


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.batch import list_jobs, parse_shard, run_batch, shard, write_summary
    from ..core.images import image_sha256
    from ..core.inference import predict
    from ..core.maps import predict_classic, source
    from ..core.weights import load_model

    classic = not source(args.model).needs_weights
    try:  # inputs first: a bad argument costs no download
        skipped: list[Path] = []
        jobs = list_jobs(args.images, args.out, recursive=args.recursive, skipped=skipped)
        i, n = parse_shard(args.shard) if args.shard else (0, 1)
        model = None if classic else load_model(args.weights)
    except ResJNDError as e:
        return fail(str(e))
    for folder in skipped:
        print(f"resjnd: predict: left out {folder}: an earlier resjnd run's results", file=sys.stderr)
    jobs = shard(jobs, i, n)
    if model is not None and jobs and not args.quiet:
        _say_if_quantising(model, args.device, args.precision)
    bar = tqdm(total=len(jobs), unit="image", disable=args.quiet)

    def compute(image, job):
        if model is None:
            pred = predict_classic(args.model, image.data, rgb=image.rgb)
        else:
            pred = predict(
                model, image.data, tile=args.tile, device=args.device, precision=args.precision, rgb=image.rgb
            )
        pred.metadata["exif_orientation"] = image.orientation
        pred.metadata["image_sha256"] = image_sha256(image.data)  # what `compress --jnd-dir` checks a map against
        if not args.quiet:
            m = pred.metadata
            tqdm.write(
                f"{job.source.name}: JND mean {pred.jnd.mean():.2f}, max {pred.jnd.max():.2f} grey levels "
                f"({m['seconds']:.1f} s, {m['device']}, {m['precision']})"
            )
        return pred

    def write(pred, job):
        write_outputs(
            pred,
            job.out_dir,
            job.stem,
            args.jnd_scale,
            {"source": str(job.source)},
            orientation=pred.metadata.get("exif_orientation", 1),
        )

    def on_done(job, ok, error):
        bar.update(1)
        if error is not None:
            tqdm.write(f"resjnd: skipping {job.source}: {error}", file=sys.stderr)

    try:
        summary = run_batch(
            jobs, compute, write, skip_existing=args.skip_existing, pipeline=not args.no_pipeline, on_done=on_done
        )
    finally:
        bar.close()
    name = "summary.json" if n == 1 else f"summary-shard-{i}-of-{n}.json"
    try:
        write_summary(
            summary,
            Path(args.out) / name,
            {"shard": [i, n], "weights": model.provenance.weights if model else f"classic:{source(args.model).name}"},
        )
    except OSError as e:
        return fail(f"could not write {Path(args.out) / name}: {e.strerror or e}", code=1)
    if not args.quiet:
        c = summary.as_dict()["counts"]
        print(
            f"{c['done']} done, {c['skipped']} skipped, {c['failed']} failed in {summary.seconds:.1f} s; "
            f"summary in {Path(args.out) / name}"
        )
    return 1 if summary.failed else 0


def cmd_gui(args: argparse.Namespace) -> int:
    from ..launcher import launch

    missing = no_display()
    if missing:
        return fail(missing)
    launch(args.images, weights=args.weights)
    return 0


def no_display(env: dict[str, str] | None = None, platform: str = sys.platform) -> str | None:
    """Why napari cannot open a window here, or None: on Linux without X11 or
    Wayland, Qt aborts the process (exit 134) instead of raising."""
    env = dict(os.environ) if env is None else env
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return (
        "gui: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); run it on a desktop, over "
        "'ssh -X', or under a virtual display: xvfb-run resjnd gui"
    )


def _say_if_quantising(model: ResJND, device: str, precision: str) -> None:
    """The first int8 run of a set of weights quantises them (about 10 s on two cores): say so."""
    from ..core import int8
    from ..core.devices import INT8, resolve_device
    from ..core.inference import inference_precision

    if inference_precision(model, precision, resolve_device(device)).precision == INT8 and not int8.is_cached(model):
        problem = int8.cache_problem()
        where = f"kept in {int8.cache_root()}" if problem is None else f"{problem}: kept in memory for this run only"
        print(f"int8: quantising these weights once (about 10 s on two cores); {where}", file=sys.stderr)


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd predict` and `resjnd gui`."""
    pr = command(sub, "predict", help="JND maps for image files")
    pr.add_argument("images", nargs="+", help="image files or folders (PNG, BMP, JPEG, TIFF, ...)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        choices=[DEFAULT_MODEL, *MODELS, *ALIASES],
        metavar="NAME",
        help=f"{DEFAULT_MODEL} (default), or a classic model, which needs no weights: {', '.join(MODELS)}",
    )
    pr.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help=f"ResJND weights: registry name or weights file; known: {known_weights()}",
    )
    add_compute(pr, training=False)
    pr.add_argument("--tile", type=positive_int, default=None, help="tile size in px (default: automatic)")
    pr.add_argument(
        "--jnd-scale",
        default="absolute",
        choices=["absolute", "max"],
        help="8-bit PNG as absolute grey levels, or divided by its maximum as the authors wrote it",
    )
    pr.add_argument("--recursive", action="store_true", help="look into sub-folders of folder arguments")
    pr.add_argument("--shard", default=None, help="I/N: process only shard I (0..N-1) of the sorted file list")
    pr.add_argument("--skip-existing", action="store_true", help="skip files whose outputs are complete")
    pr.add_argument("--no-pipeline", action="store_true", help="read, compute and write one file at a time")
    pr.add_argument("-q", "--quiet", action="store_true")
    pr.set_defaults(func=cmd_predict, check=lambda args: out_folder(args.out))

    g = command(sub, "gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
