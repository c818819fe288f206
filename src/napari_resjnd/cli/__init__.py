"""The ``resjnd`` command line: predict, finetune, train, patches, evaluate, ladder,
annotations, gui. Each command lives in the module of its concern; this one
holds the argument parser."""

from __future__ import annotations

import argparse

from ..core.weights import DEFAULT_WEIGHTS, REGISTRY
from .predict import cmd_gui, cmd_predict, write_outputs
from .research import cmd_annotations_merge, cmd_evaluate, cmd_ladder
from .training import cmd_finetune, cmd_patches, cmd_train

__all__ = ["build_parser", "main", "write_outputs"]

PATCH_HELP = ("patch side in px (default: 48, or the pairs' own side when every pair in the folder has "
              "one size smaller than 48, as `resjnd patches --size 16` writes)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    sub = p.add_subparsers(dest="command", required=True)
    known = ", ".join(f"{k} ({v.licence})" for k, v in REGISTRY.items())

    pr = sub.add_parser("predict", help="JND maps for image files")
    pr.add_argument("images", nargs="+", help="image files or folders (PNG, BMP, JPEG, TIFF, ...)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"registry name or weights file; known: {known}")
    pr.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    pr.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): bf16 where the hardware runs it natively (mean JND error ~0.1 grey "
             "level), else fp32; fp32 reproduces the authors' maps exactly",
    )
    pr.add_argument("--tile", type=int, default=None, help="tile size in px (default: automatic)")
    pr.add_argument(
        "--jnd-scale", default="absolute", choices=["absolute", "max"],
        help="8-bit PNG as absolute grey levels, or divided by its maximum as the authors wrote it",
    )
    pr.add_argument("--recursive", action="store_true", help="look into sub-folders of folder arguments")
    pr.add_argument("--shard", default=None, help="I/N: process only shard I (0..N-1) of the sorted file list")
    pr.add_argument("--skip-existing", action="store_true", help="skip files whose outputs are complete")
    pr.add_argument("--no-pipeline", action="store_true", help="read, compute and write one file at a time")
    pr.add_argument("-q", "--quiet", action="store_true")
    pr.set_defaults(func=cmd_predict)

    ft = sub.add_parser("finetune", help="fine-tune on pristine/target pairs (DIR/data, DIR/label)")
    ft.add_argument("--pairs", required=True, help="folder with data/ (pristine) and label/ (target CPL)")
    ft.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    ft.add_argument("--weights", default=DEFAULT_WEIGHTS, help="starting weights: registry name or file")
    ft.add_argument("--epochs", type=int, default=10)
    ft.add_argument("--patch", type=int, default=None, help=PATCH_HELP)
    ft.add_argument("--batch", type=int, default=8)
    ft.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    ft.add_argument("--preset", default="finetune", choices=["finetune", "authors"],
                    help="finetune: Adam 1e-4, clip 0.4; authors: SGD 0.1, momentum 0.9, wd 1e-4, "
                         "clip 0.4, lr/10 every 100 epochs, sum-reduced MSE")
    ft.add_argument("--val", type=float, default=0.2, help="fraction of patches held out for validation")
    ft.add_argument("--patience", type=int, default=5, help="early stopping after N epochs without gain (0: off)")
    ft.add_argument("--freeze", nargs="*", choices=["input", "conv1", "conv2", "output"])
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    ft.add_argument("--device", default="auto")
    ft.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="auto (default): bf16 autocast where the hardware runs it natively, else fp32")
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser("evaluate", help="JND-guided noise at equal PSNR, metric panel and statistics")
    ev.add_argument("images", nargs="+")
    ev.add_argument("--psnr", type=float, action="append", help="target PSNR in dB (repeatable; default 26)")
    ev.add_argument("--jnd", default="resjnd,chou,namm,wu2017,uniform,shuffled",
                    help="maps to compare, comma-separated: resjnd, chou, namm, wu2017, uniform, shuffled")
    ev.add_argument("--out", required=True, help="CSV with a row per image, map and target PSNR")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--plot", default=None, help="quality-versus-PSNR plot (PNG; needs matplotlib)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    pa = sub.add_parser("patches", help="crop aligned training patches from a pair folder")
    pa.add_argument("src", help="folder with data/ (pristine) and label/ (CPL)")
    pa.add_argument("out", help="output folder, same layout")
    pa.add_argument("--size", type=int, required=True)
    pa.add_argument("--stride", type=int, default=None, help="default: the patch size (no overlap)")
    pa.add_argument("--min-std", type=float, default=0.0,
                    help="skip patches whose pristine luminance std (grey levels) is below this")
    pa.add_argument("-q", "--quiet", action="store_true")
    pa.set_defaults(func=cmd_patches)

    tr = sub.add_parser("train", help="train on a pair folder (random init or given weights); torchrun-ready")
    tr.add_argument("--pairs", required=True, help="folder with data/ and label/ (e.g. from `resjnd patches`)")
    tr.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    tr.add_argument("--val", default=None, help="validation pair folder (default: hold out --val-fraction)")
    tr.add_argument("--val-fraction", type=float, default=0.1)
    tr.add_argument("--val-every", type=int, default=10, help="validate every N epochs (and at the end)")
    tr.add_argument("--weights", default=None, help="start from these weights (default: random initialisation)")
    tr.add_argument("--channels", type=int, default=128, help="feature channels of a new network (published: 128)")
    tr.add_argument("--recursions", type=int, default=25, help="recursions of a new network (published: 25)")
    tr.add_argument("--preset", default="authors", choices=["authors", "finetune"])
    tr.add_argument("--epochs", type=int, default=250)
    tr.add_argument("--batch", type=int, default=32, help="global batch, split over processes")
    tr.add_argument("--patch", type=int, default=None, help=PATCH_HELP)
    tr.add_argument("--lr", type=float, default=None)
    tr.add_argument("--patience", type=int, default=0, help="early stopping after N validations without gain")
    tr.add_argument("--workers", type=int, default=2, help="DataLoader worker processes per training process")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    tr.set_defaults(func=cmd_train)

    ld = sub.add_parser("ladder", help="a distortion ladder for one patch, with its PSNRs")
    ld.add_argument("image")
    ld.add_argument("--box", required=True, help="x,y,w,h in pixels")
    ld.add_argument("--generator", default="klt", choices=["klt", "jpeg", "webp", "noise", "blur", "quant"])
    ld.add_argument("--levels", type=int, default=8)
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--out", required=True)
    ld.set_defaults(func=cmd_ladder)

    an = sub.add_parser("annotations", help="CPL annotation sessions")
    an_sub = an.add_subparsers(dest="action", required=True)
    mg = an_sub.add_parser("merge", help="combine observers' sessions and write a pair folder")
    mg.add_argument("sessions", nargs="+", help="session JSON files (Annotate CPL widget)")
    mg.add_argument("--out", required=True, help="pair folder (data/, label/) plus merged.json")
    mg.add_argument("--image", default=None, help="the pristine image (default: the path in the session)")
    mg.set_defaults(func=cmd_annotations_merge)

    g = sub.add_parser("gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
