"""The ``resjnd`` command line: predict, finetune, train, patches, evaluate, ladder,
annotations, gui. Each command lives in the module of its concern; this one
holds the argument parser."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.finetune import RESUME_KEYS
from ..core.inference import PRECISION_CHOICES
from ..core.weights import DEFAULT_WEIGHTS, REGISTRY
from ._common import (
    Parser,
    UsageError,
    check_device,
    fail,
    fraction,
    nonnegative_float,
    nonnegative_int,
    out_file,
    out_folder,
    positive_float,
    positive_int,
    psnr_target,
)
from .predict import cmd_gui, cmd_predict, write_outputs
from .research import cmd_annotations_merge, cmd_evaluate, cmd_ladder
from .training import cmd_finetune, cmd_patches, cmd_train

__all__ = ["build_parser", "main", "write_outputs"]

PATCH_HELP = (
    "patch side in px (default: 48, or the pairs' own side when every pair in the folder has "
    "one size smaller than 48, as `resjnd patches --size 16` writes)"
)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks (for bug reports)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(parent, name: str, **kw) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[common], **kw)

    known = ", ".join(f"{k} ({v.licence})" for k, v in REGISTRY.items())

    pr = command(sub, "predict", help="JND maps for image files")
    pr.add_argument("images", nargs="+", help="image files or folders (PNG, BMP, JPEG, TIFF, ...)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"registry name or weights file; known: {known}")
    pr.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    pr.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="auto (default): bf16 where the hardware runs it natively (mean JND error ~0.1 grey "
        "level), else fp32; fp32 reproduces the authors' maps exactly",
    )
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
    ft.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS, help="default: 10")
    ft.add_argument("--patch", type=positive_int, default=argparse.SUPPRESS, help=PATCH_HELP)
    ft.add_argument("--batch", type=positive_int, default=argparse.SUPPRESS, help="default: 8")
    ft.add_argument(
        "--lr", type=positive_float, default=argparse.SUPPRESS, help="learning rate (default: the preset's)"
    )
    ft.add_argument(
        "--preset",
        default=argparse.SUPPRESS,
        choices=["finetune", "authors"],
        help="finetune: Adam 1e-4, clip 0.4; authors: SGD 0.1, momentum 0.9, wd 1e-4, "
        "clip 0.4, lr/10 every 100 epochs, sum-reduced MSE",
    )
    ft.add_argument(
        "--val",
        dest="val_fraction",
        type=fraction,
        default=argparse.SUPPRESS,
        help="fraction of patches held out for validation (default: 0.2)",
    )
    ft.add_argument(
        "--patience",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help="early stopping after N epochs without gain (0: off; default: 5)",
    )
    ft.add_argument("--freeze", nargs="*", choices=["input", "conv1", "conv2", "output"], default=argparse.SUPPRESS)
    ft.add_argument("--seed", type=nonnegative_int, default=argparse.SUPPRESS, help="default: 0")
    ft.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    ft.add_argument(
        "--override",
        nargs="+",
        default=(),
        choices=RESUME_KEYS,
        metavar="SETTING",
        help="with --resume: settings that may differ from the recorded run "
        f"({', '.join(RESUME_KEYS)}); recorded in the history",
    )
    ft.add_argument("--device", default="auto")
    ft.add_argument(
        "--precision",
        default="auto",
        choices=PRECISION_CHOICES,
        help="auto (default): bf16 autocast where the hardware runs it natively, else fp32",
    )
    ft.set_defaults(func=cmd_finetune)

    ev = command(sub, "evaluate", help="JND-guided noise at equal PSNR, metric panel and statistics")
    ev.add_argument("images", nargs="+")
    ev.add_argument("--psnr", type=psnr_target, action="append", help="target PSNR in dB (repeatable; default 26)")
    ev.add_argument(
        "--jnd",
        default="resjnd,chou,namm,wu2017,uniform,shuffled",
        help="maps to compare, comma-separated: resjnd, chou, namm, wu2017, uniform, shuffled",
    )
    ev.add_argument("--out", required=True, help="CSV with a row per image, map and target PSNR")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--plot", default=None, help="quality-versus-PSNR plot (PNG; needs matplotlib)")
    ev.add_argument("--seed", type=nonnegative_int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
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
    tr.add_argument("--val-fraction", type=fraction, default=argparse.SUPPRESS, help="default: 0.1")
    tr.add_argument(
        "--val-every", type=positive_int, default=argparse.SUPPRESS, help="validate every N epochs (and at the end)"
    )
    tr.add_argument("--weights", default=None, help="start from these weights (default: random initialisation)")
    tr.add_argument(
        "--channels", type=positive_int, default=128, help="feature channels of a new network (published: 128)"
    )
    tr.add_argument("--recursions", type=positive_int, default=25, help="recursions of a new network (published: 25)")
    tr.add_argument("--preset", default=argparse.SUPPRESS, choices=["authors", "finetune"], help="default: authors")
    tr.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS, help="default: 250")
    tr.add_argument(
        "--batch", type=positive_int, default=argparse.SUPPRESS, help="global batch, split over processes (default: 32)"
    )
    tr.add_argument("--patch", type=positive_int, default=argparse.SUPPRESS, help=PATCH_HELP)
    tr.add_argument("--lr", type=positive_float, default=argparse.SUPPRESS, help="default: the preset's")
    tr.add_argument(
        "--patience",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help="early stopping after N validations without gain (default: 0, off)",
    )
    tr.add_argument(
        "--workers", type=nonnegative_int, default=2, help="DataLoader worker processes per training process"
    )
    tr.add_argument("--seed", type=nonnegative_int, default=argparse.SUPPRESS, help="default: 0")
    tr.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    tr.add_argument(
        "--override",
        nargs="+",
        default=(),
        choices=RESUME_KEYS,
        metavar="SETTING",
        help="with --resume: settings that may differ from the recorded run; recorded in the history",
    )
    tr.add_argument("--device", default="auto")
    tr.add_argument("--precision", default="auto", choices=PRECISION_CHOICES)
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

    g = command(sub, "gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
    return p


def _exists(path: str, what: str, folder: bool | None = None) -> None:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p}: no such {'folder' if folder else 'file'}")
    if folder is True and not p.is_dir():
        raise UsageError(f"{what} {p} is a file; give a folder")
    if folder is False and p.is_dir():
        raise UsageError(f"{what} {p} is a folder; give a file")


def check_args(args) -> None:
    """Every argument and input path checked before any work (one-line errors)."""
    cmd = args.command
    if getattr(args, "device", None) is not None:
        check_device(args.device)
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
        from ..core.baselines import MODELS

        known = {"resjnd", "uniform", "shuffled", *MODELS}
        names = [n.strip() for n in args.jnd.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise UsageError(
                f"--jnd {args.jnd!r}: unknown map {', '.join(unknown) or '(none)'}; known: {', '.join(sorted(known))}"
            )
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
    elif cmd == "annotations":
        for path in args.sessions:
            _exists(path, "session", folder=False)
        out_folder(args.out)
        if args.image:
            _exists(args.image, "--image", folder=False)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors are one line and a non-zero exit (2: bad input,
    1: some files failed, 130: interrupted); ``--debug`` shows tracebacks."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (its one line is printed)
        return e.code if isinstance(e.code, int) else 0
    try:
        check_args(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("resjnd: interrupted", file=sys.stderr)
        return 130
    except UsageError as e:
        return fail(e)
    except (ValueError, OSError, MemoryError) as e:  # bad input met during the work
        if args.debug:
            raise
        return fail(f"{e}" if isinstance(e, ValueError) else f"{type(e).__name__}: {e}")
    except Exception as e:  # a bug: one line, the traceback on request
        if args.debug:
            raise
        return fail(
            f"{type(e).__name__}: {e} (this looks like a bug; run again with --debug for the traceback)", code=1
        )
