"""`resjnd patches`, `resjnd finetune` and `resjnd train`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ResJNDError
from ..core.events import EpochDone, TrainingEvent, TrainingStarted, TrainingStep, drive
from ..core.training.config import DEFAULT_PATCH, FINETUNE_CONFIG, LAYERS, PRESETS, TRAIN_CONFIG, FinetuneConfig
from ..core.training.finetune import RESUME_KEYS
from ..core.weights import DEFAULT_WEIGHTS
from ._common import Command, UsageError, add_compute, exists, fail, out_file, out_folder
from ._types import fraction, nonnegative_float, nonnegative_int, positive_float, positive_int


class EpochPrinter:
    """An ``on_event`` callback for training: a progress bar per epoch, a line per epoch."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, ev: TrainingEvent) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        if isinstance(ev, TrainingStarted):
            print(
                f"{ev.train_patches} training and {ev.val_patches} validation patches of "
                f"{ev.patch} px; {ev.steps} steps per epoch"
            )
        elif isinstance(ev, TrainingStep):
            if self.bar is None:
                self.bar = tqdm(total=ev.steps, desc=f"epoch {ev.epoch}", unit="step", leave=False)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{ev.loss:.2e}")
        elif isinstance(ev, EpochDone):
            self.close()
            train = "-" if ev.train_loss is None else f"{ev.train_loss:.4e}"
            val = "-" if ev.val_loss is None else f"{ev.val_loss:.4e}"
            print(
                f"epoch {ev.epoch:3d}  train {train}  val {val}" + ("  (best, saved)" if ev.best else ""),
                flush=True,
            )

    def close(self) -> None:
        """End a bar left open (an error mid-epoch), so the message gets its own line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


#: Hyperparameters that ``finetune`` and ``train`` take from the command line when given.
CONFIG_ARGS = ("epochs", "patch", "batch", "preset", "lr", "seed", "val_fraction", "val_every", "patience", "freeze")


def config_from_args(args: argparse.Namespace, defaults: FinetuneConfig) -> FinetuneConfig:
    """The run's settings: the options given, and for the rest the recorded run's
    (with ``--resume``) or the core's ``defaults``."""
    from dataclasses import asdict

    from ..core.training.finetune import recorded_config

    given = {k: getattr(args, k) for k in CONFIG_ARGS if hasattr(args, k)}
    if "freeze" in given:
        given["freeze"] = tuple(given["freeze"] or ())
    base = asdict(recorded_config(args.resume) if args.resume else defaults)
    return FinetuneConfig(**{**base, **given, "device": args.device, "precision": args.precision})


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..core.model import CHANNELS, RECURSIONS, Provenance, ResJND
    from ..core.training.checkpoints import recorded_architecture
    from ..core.training.finetune import history_path
    from ..core.training.folders import init_distributed, iter_train
    from ..core.weights import load_model

    dist, device = init_distributed()
    rank = dist.get_rank() if dist is not None else 0
    on_event = EpochPrinter(quiet=rank != 0)
    try:
        config = config_from_args(args, TRAIN_CONFIG)
        if args.weights:
            model = load_model(args.weights)
        else:  # the authors' initialisation, the same on every rank
            torch.manual_seed(config.seed)
            arch = (recorded_architecture(args.resume) if args.resume else None) or {}
            model = ResJND(
                args.channels or arch.get("channels", CHANNELS), args.recursions or arch.get("recursions", RECURSIONS)
            )
            model.provenance = Provenance(weights="random-init")
        gen = iter_train(
            model,
            args.pairs,
            args.out,
            config,
            val_dir=args.val,
            workers=args.workers,
            resume=args.resume,
            dist=dist,
            device=device,
            override=tuple(args.override),
        )
        result = drive(gen, on_event)
    except KeyboardInterrupt:
        on_event.close()  # "interrupted" on its own line
        raise
    except (ResJNDError, OSError) as e:
        on_event.close()
        if dist is not None:
            dist.destroy_process_group()
        return fail(str(e))
    if dist is not None:
        # every rank leaves together: tearing gloo down while rank 0 still writes
        # its files can abort the other rank at exit
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        print(f"{result.stopped}; best weights in {result.checkpoint}, history in {history_path(args.out)}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..core.training.finetune import finetune, history_path
    from ..core.training.pairs import load_pair_folder
    from ..core.weights import load_model

    on_event = EpochPrinter()
    try:
        config = config_from_args(args, FINETUNE_CONFIG)
        model = load_model(args.weights)
        pairs = load_pair_folder(args.pairs)
        print(f"{len(pairs)} image pairs")
        result = finetune(
            model, pairs, args.out, config, on_event=on_event, resume=args.resume, override=tuple(args.override)
        )
    except KeyboardInterrupt:
        on_event.close()  # "interrupted" on its own line
        raise
    except (ResJNDError, OSError) as e:
        on_event.close()
        return fail(str(e))
    print(f"{result.stopped}; best weights in {result.checkpoint}, history in {history_path(args.out)}")
    return 0


def cmd_patches(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.training.pairs import write_patches

    bar = tqdm(unit="pair", disable=args.quiet)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        counts = write_patches(args.src, args.out, args.size, args.stride, args.min_std, progress)
    except (ResJNDError, OSError) as e:
        bar.close()  # first, so that the message gets its own line
        return fail(str(e))
    bar.close()
    print(
        f"{counts['patches']} patch pairs of {args.size} px from {counts['pairs']} image pairs"
        + (f"; {counts['skipped_flat']} flat patches skipped" if args.min_std else "")
        + (f"; replaced the earlier run's {counts['replaced']} pairs in {args.out}" if counts["replaced"] else "")
    )
    return 0


PATCH_HELP = (
    f"patch side in px (default: {DEFAULT_PATCH}, or the pairs' own side when every pair in the folder "
    f"has one size smaller than {DEFAULT_PATCH}, as `resjnd patches --size 16` writes)"
)


#: The recorded settings each command has an option for: what --override can name.
FINETUNE_OVERRIDABLE = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "freeze")
TRAIN_OVERRIDABLE = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "val_every")


def _preset_help() -> str:
    return "; ".join(f"{name}: {p.describe()}" for name, p in PRESETS.items())


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


def _check_training(args: argparse.Namespace) -> None:
    exists(args.pairs, "--pairs", folder=True)
    out_file(args.out, suffixes=(".safetensors",))
    if getattr(args, "val", None) and args.command == "train":
        exists(args.val, "--val-dir", folder=True)
    if args.resume:
        exists(args.resume, "--resume", folder=False)
    elif args.override:
        raise UsageError("--override goes with --resume")


def _check_patches(args: argparse.Namespace) -> None:
    exists(args.src, "patches SRC", folder=True)
    out_folder(args.out, "patches OUT")
    if Path(args.out).resolve() == Path(args.src).resolve():
        raise UsageError("patches OUT must differ from SRC")


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd finetune`, `resjnd patches` and `resjnd train`."""
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
    add_compute(ft, training=True)
    ft.set_defaults(func=cmd_finetune, check=_check_training)

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
    pa.set_defaults(func=cmd_patches, check=_check_patches)

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
    add_compute(tr, training=True)
    tr.set_defaults(func=cmd_train, check=_check_training)
