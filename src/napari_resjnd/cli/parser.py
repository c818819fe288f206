"""The ``resjnd`` argument parser and its checks. Defaults and choices come from
the core (:class:`~napari_resjnd.core.training.config.FinetuneConfig`, :data:`TRAIN_CONFIG`,
:mod:`~napari_resjnd.core.devices`), so the help text cannot drift from the code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.devices import AUTO, DEVICE_HELP, INT8, PRECISIONS
from ..core.maps import ALIASES
from ..core.maps import MODELS as CLASSIC_MODELS
from ..core.precision import INFERENCE_PRECISION_CHOICES, PRECISION_CHOICES
from ..core.training.config import DEFAULT_PATCH, FINETUNE_CONFIG, LAYERS, PRESETS, TRAIN_CONFIG, FinetuneConfig
from ..core.training.finetune import RESUME_KEYS
from ..core.weights import DEFAULT_WEIGHTS, REGISTRY
from ._common import (
    Parser,
    UsageError,
    check_device,
    fraction,
    nonnegative_float,
    nonnegative_int,
    out_file,
    out_folder,
    positive_float,
    positive_int,
    psnr_target,
)
from .compress import cmd_compress
from .doctor import cmd_doctor
from .predict import cmd_gui, cmd_predict
from .research import cmd_annotations_merge, cmd_evaluate, cmd_ladder
from .training import cmd_finetune, cmd_patches, cmd_train
from .visibility import add_visibility_commands, check_visibility

PATCH_HELP = (
    f"patch side in px (default: {DEFAULT_PATCH}, or the pairs' own side when every pair in the folder "
    f"has one size smaller than {DEFAULT_PATCH}, as `resjnd patches --size 16` writes)"
)


#: The recorded settings each command has an option for: what --override can name.
FINETUNE_OVERRIDABLE = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "freeze")
TRAIN_OVERRIDABLE = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "val_every")


def _preset_help() -> str:
    return "; ".join(f"{name}: {p.describe()}" for name, p in PRESETS.items())


def _add_compute(parser: argparse.ArgumentParser, training: bool) -> None:
    """--device and --precision, with the choices and rules of core.devices and core.precision."""
    parser.add_argument("--device", default=AUTO, help=f"{DEVICE_HELP} (default: {AUTO}, the best device here)")
    fp32, bf16, fp16 = PRECISIONS
    gpu = f"on a CUDA GPU {bf16} where it supports it, else {fp16}"
    if training:
        help_ = f"{AUTO} (default): {gpu}; on a CPU {bf16} autocast where it runs natively, else {fp32}; MPS: {fp32}"
    else:
        help_ = (
            f"{AUTO} (default): {gpu}; on a CPU {INT8} for the registry weights when the int8 extra is "
            f"installed, else {bf16} where the CPU runs it natively, else {fp32}; MPS: {fp32}. "
            f"{fp32} reproduces the authors' maps exactly (docs: Precision and exactness)"
        )
    parser.add_argument(
        "--precision",
        default=AUTO,
        choices=PRECISION_CHOICES if training else INFERENCE_PRECISION_CHOICES,
        help=help_,
    )


class _Deprecated(argparse.Action):
    """An old option spelling: still works, and says once on stderr which one replaces it."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        print(f"resjnd: warning: {option} is deprecated; use {self.new} (same meaning)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _config_args(
    parser: argparse.ArgumentParser, defaults: FinetuneConfig, per: str, overridable: Sequence[str]
) -> None:
    """The hyperparameters a run records, their defaults shown from ``defaults``.

    Their parser default is SUPPRESS: an option not given takes the recorded run's
    value with --resume, else ``defaults`` (:func:`.training.config_from_args`).
    ``overridable``: the recorded settings this command has an option for; only
    these can differ on resume, so only these are offered to --override."""
    assert set(overridable) <= set(RESUME_KEYS), overridable
    parser.add_argument(
        "--val-fraction",
        type=fraction,
        default=argparse.SUPPRESS,
        help=f"share of the patches held out for validation, in [0, 1) (default: {defaults.val_fraction})",
    )
    d = defaults
    parser.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS, help=f"default: {d.epochs}")
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"patches per step{per} (default: {d.batch})",
    )
    parser.add_argument("--patch", type=positive_int, default=argparse.SUPPRESS, help=PATCH_HELP)
    parser.add_argument(
        "--preset", default=argparse.SUPPRESS, choices=list(PRESETS), help=f"{_preset_help()} (default: {d.preset})"
    )
    parser.add_argument(
        "--lr", type=positive_float, default=argparse.SUPPRESS, help="learning rate (default: the preset's)"
    )
    parser.add_argument(
        "--patience",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help=f"early stopping after N validations without gain (0: off; default: {d.patience})",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=argparse.SUPPRESS, help=f"default: {d.seed}")
    parser.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    parser.add_argument(
        "--override",
        nargs="+",
        default=(),
        choices=overridable,
        metavar="SETTING",
        help="with --resume: settings that may differ from the recorded run "
        f"({', '.join(overridable)}); recorded in the history",
    )


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks (for bug reports)")
    common.add_argument(
        "--verbose", "-v", action="store_true", help="log the decisions taken (precision, device, caches, fallbacks)"
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(parent: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[common], **kw)

    known = ", ".join(f"{k} ({v.licence})" for k, v in REGISTRY.items())

    pr = command(sub, "predict", help="JND maps for image files")
    pr.add_argument("images", nargs="+", help="image files or folders (PNG, BMP, JPEG, TIFF, ...)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument(
        "--model",
        default="resjnd",
        choices=["resjnd", *CLASSIC_MODELS, *ALIASES],
        metavar="NAME",
        help=f"resjnd (default), or a classic model, which needs no weights: {', '.join(CLASSIC_MODELS)}",
    )
    pr.add_argument(
        "--weights", default=DEFAULT_WEIGHTS, help=f"ResJND weights: registry name or weights file; known: {known}"
    )
    _add_compute(pr, training=False)
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
    pr.set_defaults(func=cmd_predict)

    ft = command(sub, "finetune", help="fine-tune on pristine/target pairs (DIR/data, DIR/label)")
    ft.add_argument("--pairs", required=True, help="folder with data/ (pristine) and label/ (target CPL)")
    ft.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    ft.add_argument("--weights", default=DEFAULT_WEIGHTS, help="starting weights: registry name or file")
    _config_args(ft, FINETUNE_CONFIG, "", FINETUNE_OVERRIDABLE)
    ft.add_argument(
        "--val",
        dest="val_fraction",
        type=fraction,
        default=argparse.SUPPRESS,
        action=_Deprecated,
        new="--val-fraction",
        metavar="FRACTION",
        help="deprecated spelling of --val-fraction",
    )
    ft.add_argument("--freeze", nargs="*", choices=list(LAYERS), default=argparse.SUPPRESS)
    _add_compute(ft, training=True)
    ft.set_defaults(func=cmd_finetune)

    ev = command(sub, "evaluate", help="JND-guided noise at equal PSNR, metric panel and statistics")
    ev.add_argument("images", nargs="+")
    ev.add_argument("--psnr", type=psnr_target, action="append", help="target PSNR in dB (repeatable; default 26)")
    ev.add_argument(
        "--jnd",
        default="all,uniform,shuffled",
        help=f"maps to compare, comma-separated: all (ResJND and every classic model), resjnd, "
        f"{', '.join(CLASSIC_MODELS)}, uniform, shuffled (default: all,uniform,shuffled)",
    )
    ev.add_argument("--out", required=True, help="CSV with a row per image, map and target PSNR")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--plot", default=None, help="quality-versus-PSNR plot (PNG; needs matplotlib)")
    ev.add_argument("--seed", type=nonnegative_int, default=0)
    _add_compute(ev, training=False)
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    _add_compress(sub, command)

    pa = command(sub, "patches", help="crop aligned training patches from a pair folder")
    pa.add_argument("src", help="folder with data/ (pristine) and label/ (CPL)")
    pa.add_argument("out", help="output folder, same layout")
    pa.add_argument("--size", type=positive_int, required=True)
    pa.add_argument("--stride", type=positive_int, default=None, help="default: the patch size (no overlap)")
    pa.add_argument(
        "--min-std",
        type=nonnegative_float,
        default=0.0,
        help="skip patches whose pristine luminance std (grey levels) is below this",
    )
    pa.add_argument("-q", "--quiet", action="store_true")
    pa.set_defaults(func=cmd_patches)

    tr = command(sub, "train", help="train on a pair folder (random init or given weights); torchrun-ready")
    tr.add_argument("--pairs", required=True, help="folder with data/ and label/ (e.g. from `resjnd patches`)")
    tr.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    tr.add_argument(
        "--val-dir",
        dest="val",
        default=None,
        metavar="DIR",
        help="validation pair folder (default: hold out --val-fraction)",
    )
    tr.add_argument(
        "--val", dest="val", action=_Deprecated, new="--val-dir", metavar="DIR", help="deprecated spelling of --val-dir"
    )
    tr.add_argument(
        "--val-every",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"validate every N epochs and at the end (default: {TRAIN_CONFIG.val_every})",
    )
    tr.add_argument("--weights", default=None, help="start from these weights (default: random initialisation)")
    tr.add_argument(
        "--channels",
        type=positive_int,
        default=None,
        help="feature channels of a new network (default: the published 128, or the resumed run's)",
    )
    tr.add_argument(
        "--recursions",
        type=positive_int,
        default=None,
        help="recursions of a new network (default: the published 25, or the resumed run's)",
    )
    _config_args(tr, TRAIN_CONFIG, ", the global batch split over processes", TRAIN_OVERRIDABLE)
    tr.add_argument(
        "--workers", type=nonnegative_int, default=2, help="DataLoader worker processes per training process"
    )
    _add_compute(tr, training=True)
    tr.set_defaults(func=cmd_train)

    ld = command(sub, "ladder", help="a distortion ladder for one patch, with its PSNRs")
    ld.add_argument("image")
    ld.add_argument("--box", required=True, help="x,y,w,h in pixels")
    ld.add_argument("--generator", default="klt", choices=["klt", "jpeg", "webp", "noise", "blur", "quant"])
    ld.add_argument("--levels", type=positive_int, default=8)
    ld.add_argument("--seed", type=nonnegative_int, default=0)
    ld.add_argument("--out", required=True)
    ld.set_defaults(func=cmd_ladder)

    an = command(sub, "annotations", help="CPL annotation sessions")
    an_sub = an.add_subparsers(dest="action", required=True, parser_class=Parser)
    mg = command(an_sub, "merge", help="combine observers' sessions and write a pair folder")
    mg.add_argument("sessions", nargs="+", help="session JSON files (Annotate CPL widget)")
    mg.add_argument("--out", required=True, help="pair folder (data/, label/) plus merged.json")
    mg.add_argument("--image", default=None, help="the pristine image (default: the path in the session)")
    mg.set_defaults(func=cmd_annotations_merge)

    add_visibility_commands(sub, command, _add_compute, known)

    d = command(sub, "doctor", help="this machine, what auto picks and why, every path's speed and error")
    d.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"weights to measure with (default: {DEFAULT_WEIGHTS})")
    d.add_argument("--no-measure", dest="measure", action="store_false", help="only say what auto picks")
    d.add_argument("--size", type=positive_int, default=128, help="side of the photo crop measured (default: 128)")
    d.add_argument("--repeat", type=positive_int, default=1, help="runs per path, best kept (default: 1)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=cmd_doctor)

    g = command(sub, "gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
    return p


def _add_compress(sub: Any, command: Any) -> None:
    from ..core.codecs import CODECS
    from ..core.coding.prefilter import DEFAULT_FILTER, DEFAULT_LAMBDA, DEFAULT_SIGMA, FILTERS, RESJND_SMOOTH
    from ..core.coding.rd import INTERPOLATIONS

    co = command(sub, "compress", help="JND-guided coding: rate-distortion curves and BD-rate per codec and JND model")
    co.add_argument("images", nargs="+", help="image files or folders")
    co.add_argument("--out", required=True, help="output folder: rd.csv, bd_rate.csv, codecs.json, streams/, plots/")
    co.add_argument(
        "--codec", default="jpeg,webp", help=f"comma-separated: {', '.join(CODECS)} or all (default: jpeg,webp)"
    )
    co.add_argument(
        "--jnd",
        default="resjnd,yang2005",
        help=f"comma-separated JND models: resjnd (its CPL image is coded), {RESJND_SMOOTH} (its map bounds the "
        f"smoothing), the classic models ({', '.join(CLASSIC_MODELS)}), or all (default: resjnd,yang2005)",
    )
    co.add_argument(
        "--quality",
        default=None,
        help="START:STOP:STEP (stop included) or a list, e.g. 20,40,60 (default: 10:90:10,95)",
    )
    co.add_argument("--weights", default=DEFAULT_WEIGHTS, help="ResJND weights: registry name or file")
    _add_compute(co, training=False)
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
    co.set_defaults(func=cmd_compress)


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
    from ..core.coding.rd import check_libraries

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
        _exists(args.jnd_dir, "--jnd-dir", folder=True)
    args.workers = args.workers or os.cpu_count() or 1


def _exists(path: str, what: str, folder: bool | None = None) -> None:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p}: no such {'folder' if folder else 'file'}")
    if folder is True and not p.is_dir():
        raise UsageError(f"{what} {p} is a file; give a folder")
    if folder is False and p.is_dir():
        raise UsageError(f"{what} {p} is a folder; give a file")


#: The commands that run ResJND for its maps (inference precisions, int8 included).
INFERENCE_COMMANDS = ("predict", "evaluate", "compress", "visibility")


def check_args(args: argparse.Namespace) -> None:
    """Every argument and input path checked before any work (one-line errors)."""
    cmd = args.command
    if getattr(args, "device", None) is not None:
        check_device(args.device)
        if getattr(args, "precision", AUTO) != AUTO:
            from ..core.devices import resolve_device
            from ..core.precision import check as check_precision

            try:
                check_precision(args.precision, resolve_device(args.device), inference=cmd in INFERENCE_COMMANDS)
            except ValueError as e:
                raise UsageError(f"--precision {args.precision}: {e}") from None
    if cmd == "predict":
        out_folder(args.out)
    elif cmd in ("finetune", "train"):
        _exists(args.pairs, "--pairs", folder=True)
        out_file(args.out, suffixes=(".safetensors",))
        if getattr(args, "val", None) and cmd == "train":
            _exists(args.val, "--val-dir", folder=True)
        if args.resume:
            _exists(args.resume, "--resume", folder=False)
        elif args.override:
            raise UsageError("--override goes with --resume")
    elif cmd == "evaluate":
        out_file(args.out, suffixes=(".csv",))
        if args.plot:
            out_file(args.plot, "--plot", suffixes=(".png", ".pdf", ".svg"))
        from ..core.research.evaluate import map_names

        try:
            map_names(args.jnd)
        except ValueError as e:
            raise UsageError(f"--jnd {args.jnd!r}: {e}") from None
    elif cmd == "compress":
        _check_compress(args)
    elif cmd == "patches":
        _exists(args.src, "patches SRC", folder=True)
        out_folder(args.out, "patches OUT")
        if Path(args.out).resolve() == Path(args.src).resolve():
            raise UsageError("patches OUT must differ from SRC")
    elif cmd == "ladder":
        _exists(args.image, "ladder IMAGE", folder=False)
        out_folder(args.out)
        if args.levels < 2:
            raise UsageError(f"--levels {args.levels}: a ladder needs at least 2 levels")
    elif cmd == "visibility":
        check_visibility(args, _exists)
    elif cmd == "annotations":
        for path in args.sessions:
            _exists(path, "session", folder=False)
        out_folder(args.out)
        if args.image:
            _exists(args.image, "--image", folder=False)
