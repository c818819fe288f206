"""The ``resjnd`` argument parser and its checks. Defaults and choices come from
the core (:class:`~napari_resjnd.core.config.FinetuneConfig`, :data:`TRAIN_CONFIG`,
:mod:`~napari_resjnd.core.devices`), so the help text cannot drift from the code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.baselines import ALIASES
from ..core.baselines import MODELS as CLASSIC_MODELS
from ..core.config import DEFAULT_PATCH, FINETUNE_CONFIG, LAYERS, PRESETS, TRAIN_CONFIG, FinetuneConfig
from ..core.devices import AUTO, DEVICE_HELP, INFERENCE_PRECISION_CHOICES, INT8, PRECISION_CHOICES, PRECISIONS
from ..core.finetune import RESUME_KEYS
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
from .predict import cmd_gui, cmd_predict
from .research import cmd_annotations_merge, cmd_evaluate, cmd_ladder
from .training import cmd_finetune, cmd_patches, cmd_train
from .visibility import cmd_visibility_map, cmd_visibility_report, cmd_visibility_simulate

PATCH_HELP = (
    f"patch side in px (default: {DEFAULT_PATCH}, or the pairs' own side when every pair in the folder "
    f"has one size smaller than {DEFAULT_PATCH}, as `resjnd patches --size 16` writes)"
)


def _preset_help() -> str:
    def describe(p: dict) -> str:
        opt = f"{p['optimizer'].upper() if p['optimizer'] == 'sgd' else p['optimizer'].title()} {p['lr']:g}"
        extra = [f"momentum {p['momentum']:g}"] if p["momentum"] else []
        extra += [f"wd {p['weight_decay']:g}"] if p["weight_decay"] else []
        extra += [f"clip {p['clip']:g}"]
        extra += [f"lr x{p['gamma']:g} every {p['step_epochs']} epochs"] if p["step_epochs"] else []
        extra += [f"{p['reduction']}-reduced MSE"]
        return f"{opt}, " + ", ".join(extra)

    return "; ".join(f"{name}: {describe(p)}" for name, p in PRESETS.items())


def _add_compute(parser: argparse.ArgumentParser, training: bool) -> None:
    """--device and --precision, with the choices and rules of core.devices."""
    parser.add_argument("--device", default=AUTO, help=f"{DEVICE_HELP} (default: {AUTO}, the best device here)")
    if training:
        help_ = f"{AUTO} (default): {PRECISIONS[1]} autocast where the hardware runs it natively, else {PRECISIONS[0]}"
    else:
        help_ = (
            f"{AUTO} (default): {PRECISIONS[1]} where the hardware runs it natively, else {INT8} (CPU, "
            f"the registry weights, needs the int8 extra), else {PRECISIONS[0]}; "
            f"{PRECISIONS[0]} reproduces the authors' maps exactly"
        )
    parser.add_argument(
        "--precision",
        default=AUTO,
        choices=PRECISION_CHOICES if training else INFERENCE_PRECISION_CHOICES,
        help=help_,
    )


def _config_args(parser: argparse.ArgumentParser, defaults: FinetuneConfig, per: str) -> None:
    """The hyperparameters a run records, their defaults shown from ``defaults``.

    Their parser default is SUPPRESS: an option not given takes the recorded run's
    value with --resume, else ``defaults`` (:func:`.training.config_from_args`)."""
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
        choices=RESUME_KEYS,
        metavar="SETTING",
        help="with --resume: settings that may differ from the recorded run "
        f"({', '.join(RESUME_KEYS)}); recorded in the history",
    )


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks (for bug reports)")
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
    _config_args(ft, FINETUNE_CONFIG, "")
    ft.add_argument(
        "--val",
        dest="val_fraction",
        type=fraction,
        default=argparse.SUPPRESS,
        help=f"fraction of patches held out for validation (default: {FINETUNE_CONFIG.val_fraction})",
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
    tr.add_argument("--val", default=None, help="validation pair folder (default: hold out --val-fraction)")
    tr.add_argument(
        "--val-fraction",
        type=fraction,
        default=argparse.SUPPRESS,
        help=f"default: {TRAIN_CONFIG.val_fraction}",
    )
    tr.add_argument(
        "--val-every",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"validate every N epochs and at the end (default: {TRAIN_CONFIG.val_every})",
    )
    tr.add_argument("--weights", default=None, help="start from these weights (default: random initialisation)")
    tr.add_argument(
        "--channels", type=positive_int, default=128, help="feature channels of a new network (published: 128)"
    )
    tr.add_argument("--recursions", type=positive_int, default=25, help="recursions of a new network (published: 25)")
    _config_args(tr, TRAIN_CONFIG, ", the global batch split over processes")
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

    _visibility_commands(sub, command, known)

    g = command(sub, "gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
    return p


def _visibility_commands(sub: Any, command: Any, known: str) -> None:
    """`resjnd visibility map | simulate | report`."""
    from ..core.psychophysics.psychometric import LAPSE
    from ..core.visibility import DEFAULT_ALPHA, DEFAULT_SLOPE

    vi = command(sub, "visibility", help="where a distortion is visible; observers' thresholds")
    vi_sub = vi.add_subparsers(dest="action", required=True, parser_class=Parser)
    models = ", ".join(["resjnd", *CLASSIC_MODELS, "uniform"])
    vm = command(vi_sub, "map", help="per-pixel detection probability and p_detect of a distorted image")
    vm.add_argument("pristine")
    vm.add_argument("distorted", help="same size as PRISTINE")
    vm.add_argument("--jnd", default="resjnd", metavar="MODEL", help=f"the JND model: {models} (default: resjnd)")
    vm.add_argument("--out", required=True, help="folder for <stem>_visibility.tif and .json")
    vm.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"ResJND weights: registry name or file; known: {known}")
    _add_compute(vm, training=False)
    vm.add_argument("--alpha", type=positive_float, default=DEFAULT_ALPHA, help="error/JND ratio seen with p = 1 - 1/e")
    vm.add_argument(
        "--slope", type=positive_float, default=DEFAULT_SLOPE, help="Weibull slope beta (default: %(default)s)"
    )
    vm.set_defaults(func=cmd_visibility_map)

    vs = command(vi_sub, "simulate", help="the adaptive procedure against a simulated observer")
    vs.add_argument("--threshold-psnr", type=positive_float, required=True, help="the observer's threshold (dB)")
    vs.add_argument("--trials", type=positive_int, default=80)
    vs.add_argument("--runs", type=positive_int, default=100)
    vs.add_argument("--seed", type=nonnegative_int, default=0)
    vs.add_argument("--slope", type=positive_float, default=3.5, help="the observer's Weibull slope")
    vs.add_argument("--lapse", type=fraction, default=LAPSE, help="the observer's lapse rate")
    vs.add_argument("--json", action="store_true", help="print every run as JSON")
    vs.set_defaults(func=cmd_visibility_simulate)

    vr = command(vi_sub, "report", help="thresholds per model from observers' sessions, paired tests, plot")
    vr.add_argument("sessions", nargs="+", help="session files (Visibility test widget)")
    vr.add_argument("--out", required=True, help="folder for visibility_report.json and thresholds.png")
    vr.add_argument("--images", default=None, help="folder of the tested images: adds p_detect rank agreement")
    vr.add_argument("--jnd", default=",".join(CLASSIC_MODELS), help="models whose p_detect is ranked (with --images)")
    vr.add_argument("--weights", default=DEFAULT_WEIGHTS)
    _add_compute(vr, training=False)
    vr.set_defaults(func=cmd_visibility_report)


def _exists(path: str, what: str, folder: bool | None = None) -> None:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p}: no such {'folder' if folder else 'file'}")
    if folder is True and not p.is_dir():
        raise UsageError(f"{what} {p} is a file; give a folder")
    if folder is False and p.is_dir():
        raise UsageError(f"{what} {p} is a folder; give a file")


def check_args(args: argparse.Namespace) -> None:
    """Every argument and input path checked before any work (one-line errors)."""
    cmd = args.command
    if getattr(args, "device", None) is not None:
        check_device(args.device)
        if getattr(args, "precision", AUTO) != AUTO:
            from ..core.devices import check_precision, resolve_device

            try:
                check_precision(
                    args.precision, resolve_device(args.device), inference=cmd in ("predict", "evaluate", "visibility")
                )
            except ValueError as e:
                raise UsageError(f"--precision {args.precision}: {e}") from None
    if cmd == "predict":
        out_folder(args.out)
    elif cmd in ("finetune", "train"):
        _exists(args.pairs, "--pairs", folder=True)
        out_file(args.out, suffixes=(".safetensors",))
        if getattr(args, "val", None) and cmd == "train":
            _exists(args.val, "--val", folder=True)
        if args.resume:
            _exists(args.resume, "--resume", folder=False)
        elif args.override:
            raise UsageError("--override goes with --resume")
    elif cmd == "evaluate":
        out_file(args.out, suffixes=(".csv",))
        if args.plot:
            out_file(args.plot, "--plot", suffixes=(".png", ".pdf", ".svg"))
        from ..core.evaluate import map_names

        try:
            map_names(args.jnd)
        except ValueError as e:
            raise UsageError(f"--jnd {args.jnd!r}: {e}") from None
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
        _check_visibility(args)
    elif cmd == "annotations":
        for path in args.sessions:
            _exists(path, "session", folder=False)
        out_folder(args.out)
        if args.image:
            _exists(args.image, "--image", folder=False)


def _check_visibility(args: argparse.Namespace) -> None:
    from ..core.baselines import is_classic

    if args.action == "map":
        _exists(args.pristine, "visibility map PRISTINE", folder=False)
        _exists(args.distorted, "visibility map DISTORTED", folder=False)
        if args.jnd not in ("resjnd", "uniform") and not is_classic(args.jnd):
            raise UsageError(f"--jnd {args.jnd}: unknown model; known: resjnd, {', '.join(CLASSIC_MODELS)}, uniform")
        out_folder(args.out)
    elif args.action == "report":
        for path in args.sessions:
            _exists(path, "session", folder=False)
        out_folder(args.out)
        if args.images:
            _exists(args.images, "--images", folder=True)
        bad = [
            m
            for m in args.jnd.split(",")
            if m.strip() and m.strip() not in ("resjnd", "uniform") and not is_classic(m.strip())
        ]
        if bad:
            raise UsageError(f"--jnd {args.jnd}: unknown model {bad[0]}")
