"""The one training loop, for fine-tuning in memory and for dataset-scale
training from folders (optionally distributed): optimiser and schedule, resume,
validation, the divergence guard, best checkpoints and early stopping.

Losses in the history are the mean squared error per pixel and channel in
[0, 1] units, whatever reduction the optimiser uses, so runs compare.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch

from . import precision as precisions
from .checkpoints import RunFiles, resume_run
from .config import DEFAULT_PATCH, LAYERS, PRESETS, FinetuneConfig, FinetuneResult
from .devices import PRECISIONS, autocast, resolve_device
from .errors import ResJNDError
from .events import EpochDone, TrainingEvent, TrainingStarted, TrainingStep
from .model import ResJND

#: (pristine, target) tensors, N x 3 x H x W in [0, 1].
Batch = tuple[torch.Tensor, torch.Tensor]


def evaluate_loss(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    precision: str = PRECISIONS[0],
    dist: Any = None,
) -> float:
    """Mean squared error per element over ``batches`` (summed over ranks)."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    with torch.no_grad(), autocast(device, precision):
        for x, y in batches:
            total[0] += float(torch.sum((model(x).float() - y) ** 2))
            total[1] += y.numel()
    if dist is not None:
        dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] else math.nan


class TrainingData(Protocol):
    """What :func:`run_training` trains on: :class:`~.finetune.MemoryData` (pairs in
    memory) and :class:`~.training.FolderData` (a pair folder, sharded over ranks)."""

    #: The run's settings, with ``patch`` resolved to the side actually used.
    config: FinetuneConfig
    #: Counts recorded in the history: at least ``train_patches`` and ``val_patches``.
    summary: dict[str, Any]

    def steps(self) -> int:
        """Optimiser steps per epoch."""
        ...

    def train_batches(self, epoch: int, device: torch.device) -> Iterable[Batch]:
        """(pristine, target) batches of one epoch, on ``device``, shuffled by epoch."""
        ...

    def val_batches(self, device: torch.device) -> Iterable[Batch]:
        """The validation batches, the same every time."""
        ...

    def state(self) -> Any:
        """The random state to store in a resume checkpoint."""
        ...

    def load_state(self, state: Any) -> None:
        """Restore what :meth:`state` returned."""
        ...


def record_what_runs(history: dict[str, Any], from_epoch: int, **now: Any) -> None:
    """A resumed run's history records what runs from now on (the optimiser's
    settings, the data, the precision); each value that changed is kept in
    ``history["resumed_changes"]`` with the epoch it applies from."""
    changed = {k: {"was": history.get(k), "now": v} for k, v in now.items() if history.get(k) != v}
    if changed:
        history.setdefault("resumed_changes", []).append({"from_epoch": from_epoch, **changed})
        history.update({k: v["now"] for k, v in changed.items()})


def run_training(
    model: ResJND,
    data: TrainingData,
    out: str | Path,
    config: FinetuneConfig,
    *,
    resume: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    dist: Any = None,
    device: torch.device | None = None,
    override: tuple[str, ...] = (),
) -> Generator[TrainingEvent, None, FinetuneResult]:
    """The one training loop, for fine-tuning (:class:`~.finetune.MemoryData`) and for
    dataset-scale training (:class:`~.training.FolderData`, optionally distributed).

    Yields :class:`~.events.TrainingStarted`, then a :class:`~.events.TrainingStep`
    per optimiser step and an :class:`~.events.EpochDone` per epoch. With ``dist`` (``torch.distributed``,
    initialised), gradients are averaged by DistributedDataParallel, losses are
    summed over ranks, and only rank 0 writes files. On ``resume`` the
    :data:`~.checkpoints.RESUME_KEYS` settings must equal the recorded ones, except those named
    in ``override`` (recorded in the history as overrides).
    """
    if config.lr is not None and not config.lr > 0:
        raise ResJNDError(f"learning rate must be above 0, got {config.lr}")
    hp = {**PRESETS[config.preset], **({"lr": config.lr} if config.lr else {})}
    out = Path(out)
    device = device or resolve_device(config.device)
    precision = precisions.resolve(config.precision, device)
    world = dist.get_world_size() if dist is not None else 1
    writer = dist is None or dist.get_rank() == 0

    model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    for name in LAYERS:
        getattr(model, name).weight.requires_grad_(name not in config.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ResJNDError("every layer is frozen: nothing to train")
    opt: torch.optim.Optimizer
    if hp["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    else:
        opt = torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=hp["step_epochs"] or 10**9, gamma=hp["gamma"])
    net: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    base = model.provenance
    history: dict[str, Any] = {
        "config": asdict(config),
        "precision": precision,
        "hyperparameters": hp,
        "data": data.summary,
        "world_size": world,
        "base_weights": base.weights,
        "base_sha256": base.origin_sha256,
        "architecture": {"channels": model.channels, "recursions": model.recursions},
        "loss": "MSE per pixel and channel, [0, 1] units",
        "epochs": [],
    }
    torch.manual_seed(config.seed)
    start_epoch, best = 1, math.inf
    files = RunFiles(out, writer)
    if resume is not None:
        history, start_epoch, best, data_state = resume_run(resume, config, override, model, opt, sched, device)
        record_what_runs(history, start_epoch, hyperparameters=hp, data=data.summary, precision=precision)
        files.adopt(resume)
        data.load_state(data_state)
    steps = data.steps()
    patch = config.patch or DEFAULT_PATCH  # the data resolved it; None only in a bare config
    has_val = data.summary.get("val_patches", 0) > 0
    yield TrainingStarted(
        train_patches=data.summary["train_patches"],
        val_patches=data.summary["val_patches"],
        steps=steps,
        epochs=config.epochs,
        patch=config.patch,
        start_epoch=start_epoch,
    )

    def save_best() -> None:
        files.save_best(model, history, best)

    def save_state(epoch: int) -> None:
        files.save_state(epoch, model, opt, sched, history, data.state())

    if not history["epochs"]:  # a fresh run (a resumed one has its epoch 0 already)
        v0 = evaluate_loss(model, data.val_batches(device), device, precision, dist) if has_val else None
        history["epochs"].append({"epoch": 0, "train_loss": None, "val_loss": v0})
        best = v0 if v0 is not None else math.inf
        save_best()
        save_state(0)
        yield EpochDone(epoch=0, train_loss=None, val_loss=v0, best=True)

    stopped, since_best = "finished", 0
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(start_epoch, config.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        total = torch.zeros(2, dtype=torch.float64)
        for step, (x, y) in enumerate(data.train_batches(epoch, device), 1):
            if should_stop is not None and should_stop():
                stopped = "stopped"
                break
            with autocast(device, precision):
                pred = net(x).float()
            sq = torch.sum((pred - y) ** 2)
            # DDP averages gradients over ranks: scale a summed loss so the
            # gradient is that of the whole (global) batch, as in one process
            loss = sq * world if hp["reduction"] == "sum" else sq / y.numel()
            bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0])
            if dist is not None:
                dist.all_reduce(bad)
            if bad.item():
                model.load_state_dict(last_good)
                stopped = "diverged"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, hp["clip"])
            opt.step()
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            step_total = torch.tensor([float(sq.detach()), float(y.numel())], dtype=torch.float64)
            if dist is not None:
                dist.all_reduce(step_total)
            total += step_total
            yield TrainingStep(
                epoch=epoch,
                step=step,
                steps=steps,
                loss=float(step_total[0] / step_total[1]),
                patches_per_s=float(total[1]) / (3 * patch**2) / (time.perf_counter() - t0),
            )
        if stopped != "finished":
            break
        sched.step()
        validate = has_val and (epoch % config.val_every == 0 or epoch == config.epochs)
        v = evaluate_loss(model, data.val_batches(device), device, precision, dist) if validate else None
        train_loss = float(total[0] / total[1]) if total[1] else None
        improved = (v < best) if v is not None else not has_val
        history["epochs"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": v,
                "seconds": round(time.perf_counter() - t0, 3),
                "lr": opt.param_groups[0]["lr"],
            }
        )
        if improved:
            best, since_best = (v if v is not None else best), 0
            save_best()
        elif v is not None:
            since_best += 1
        save_state(epoch)
        yield EpochDone(epoch=epoch, train_loss=train_loss, val_loss=v, best=bool(improved))
        if config.patience and since_best >= config.patience:
            stopped = "early stop"
            break

    history["stopped"] = stopped
    files.save_history(history)
    model.eval()
    return FinetuneResult(model=model, history=history, checkpoint=out, stopped=stopped)
