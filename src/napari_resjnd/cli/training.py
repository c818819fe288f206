"""`resjnd patches`, `resjnd finetune` and `resjnd train`."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.errors import ResJNDError
from ..core.events import EpochDone, TrainingEvent, TrainingStarted, TrainingStep, drive
from ..core.training.config import FINETUNE_CONFIG, TRAIN_CONFIG, FinetuneConfig
from ._common import fail


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
