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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypedDict

import torch

from .. import precision as precisions
from ..devices import PRECISIONS, autocast, resolve_device
from ..errors import ResJNDError
from ..events import EpochDone, TrainingEvent, TrainingStarted, TrainingStep
from ..model import ResJND
from . import interrupts
from .checkpoints import RunFiles, resume_run
from .config import DEFAULT_PATCH, LAYERS, PRESETS, FinetuneConfig, FinetuneResult, Preset

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


class RunOptions(TypedDict, total=False):
    """How a training run is driven, beside its model, data and settings; the
    front doors (:func:`~.training.iter_train`, :func:`~.finetune.iter_finetune`)
    pass them to :func:`run_training` unchanged."""

    #: A run's resume file (or its checkpoint) to continue from.
    resume: str | Path | None
    #: Checked between steps; True stops the run after the current step.
    should_stop: Callable[[], bool] | None
    #: ``torch.distributed``, initialised, for DDP; None for one process.
    dist: Any
    #: The device (default: the config's).
    device: torch.device | None
    #: Recorded settings that may differ on resume.
    override: tuple[str, ...]


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
    with interrupts.guarded():  # Ctrl-C: never lost, never half-way through a checkpoint
        return (yield from _run(_setup(model, data, Path(out), config, resume, dist, device, override), should_stop))


def _run(run: _Run, should_stop: Callable[[], bool] | None) -> Generator[TrainingEvent, None, FinetuneResult]:
    config, data = run.config, run.data
    yield TrainingStarted(
        train_patches=data.summary["train_patches"],
        val_patches=data.summary["val_patches"],
        steps=run.steps,
        epochs=config.epochs,
        patch=config.patch,
        start_epoch=run.start_epoch,
    )
    if not run.history["epochs"]:  # a fresh run (a resumed one has its epoch 0 already)
        yield run.first_checkpoint()
    stopped = "finished"
    for epoch in range(run.start_epoch, config.epochs + 1):
        t0 = time.perf_counter()
        stopped, total = yield from run.train_epoch(epoch, should_stop)
        if stopped != "finished":
            break
        yield run.end_epoch(epoch, total, t0)
        if config.patience and run.since_best >= config.patience:
            stopped = "early stop"
            break
    run.history["stopped"] = stopped
    with interrupts.held():
        run.files.save_history(run.history)
    run.model.eval()
    return FinetuneResult(model=run.model, history=run.history, checkpoint=run.files.out, stopped=stopped)


@dataclass
class _Run:
    """One training run's state, set up by :func:`_setup`: the network and its
    optimiser, the data, the files, the history and the best validation loss."""

    model: ResJND
    net: torch.nn.Module
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: Any
    preset: Preset
    data: TrainingData
    files: RunFiles
    history: dict[str, Any]
    device: torch.device
    precision: str
    world: int
    dist: Any
    config: FinetuneConfig
    start_epoch: int = 1
    best: float = math.inf
    since_best: int = 0
    #: Optimiser steps per epoch (set once the data's state is restored).
    steps: int = 0

    @property
    def has_val(self) -> bool:
        return bool(self.data.summary.get("val_patches", 0) > 0)

    def val_loss(self) -> float:
        return evaluate_loss(self.model, self.data.val_batches(self.device), self.device, self.precision, self.dist)

    def first_checkpoint(self) -> EpochDone:
        """Epoch 0: the starting weights' validation loss, saved as the best so far."""
        v0 = self.val_loss() if self.has_val else None
        self.history["epochs"].append({"epoch": 0, "train_loss": None, "val_loss": v0})
        self.best = v0 if v0 is not None else math.inf
        with interrupts.held():  # the weights, history and resume state of one epoch: all or none
            self.files.save_best(self.model, self.history, self.best)
            self.files.save_state(0, self.model, self.opt, self.sched, self.history, self.data.state())
        return EpochDone(epoch=0, train_loss=None, val_loss=v0, best=True)

    def train_epoch(
        self, epoch: int, should_stop: Callable[[], bool] | None
    ) -> Generator[TrainingStep, None, tuple[str, torch.Tensor]]:
        """One epoch of optimiser steps; returns how it ended ("finished", "stopped",
        "diverged": the last good weights restored) and the summed (error, count)."""
        self.net.train()
        t0 = time.perf_counter()
        total = torch.zeros(2, dtype=torch.float64)
        patch = self.config.patch or DEFAULT_PATCH  # the data resolved it; None only in a bare config
        last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        for step, (x, y) in enumerate(self.data.train_batches(epoch, self.device), 1):
            interrupts.check()
            if should_stop is not None and should_stop():
                return "stopped", total
            sq = self._step(x, y)
            if sq is None:
                self.model.load_state_dict(last_good)
                return "diverged", total
            last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            step_total = torch.tensor([float(sq), float(y.numel())], dtype=torch.float64)
            if self.dist is not None:
                self.dist.all_reduce(step_total)
            total += step_total
            yield TrainingStep(
                epoch=epoch,
                step=step,
                steps=self.steps,
                loss=float(step_total[0] / step_total[1]),
                patches_per_s=float(total[1]) / (3 * patch**2) / (time.perf_counter() - t0),
            )
        return "finished", total

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """One optimiser step; its summed squared error, or None if the loss was not finite (on any rank)."""
        with autocast(self.device, self.precision):
            pred = self.net(x).float()
        sq = torch.sum((pred - y) ** 2)
        # DDP averages gradients over ranks: scale a summed loss so the
        # gradient is that of the whole (global) batch, as in one process
        loss = sq * self.world if self.preset.reduction == "sum" else sq / y.numel()
        bad = torch.tensor([0.0 if torch.isfinite(loss) else 1.0])
        if self.dist is not None:
            self.dist.all_reduce(bad)
        if bad.item():
            return None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.preset.clip)
        self.opt.step()
        return sq.detach()

    def end_epoch(self, epoch: int, total: torch.Tensor, t0: float) -> EpochDone:
        """Schedule, validation, the history (the epoch's seconds since ``t0``, validation
        included), the best weights and the resume state."""
        self.sched.step()
        validate = self.has_val and (epoch % self.config.val_every == 0 or epoch == self.config.epochs)
        v = self.val_loss() if validate else None
        train_loss = float(total[0] / total[1]) if total[1] else None
        improved = (v < self.best) if v is not None else not self.has_val
        self.history["epochs"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": v,
                "seconds": round(time.perf_counter() - t0, 3),
                "lr": self.opt.param_groups[0]["lr"],
            }
        )
        with interrupts.held():  # the weights, history and resume state of one epoch: all or none
            if improved:
                self.best, self.since_best = (v if v is not None else self.best), 0
                self.files.save_best(self.model, self.history, self.best)
            elif v is not None:
                self.since_best += 1
            self.files.save_state(epoch, self.model, self.opt, self.sched, self.history, self.data.state())
        return EpochDone(epoch=epoch, train_loss=train_loss, val_loss=v, best=bool(improved))


def _setup(
    model: ResJND,
    data: TrainingData,
    out: Path,
    config: FinetuneConfig,
    resume: str | Path | None,
    dist: Any,
    device: torch.device | None,
    override: tuple[str, ...],
) -> _Run:
    """The network on its device, the optimiser and schedule of the preset, the
    history (or the resumed run's, with what changes recorded), the run's files."""
    if config.lr is not None and not config.lr > 0:
        raise ResJNDError(f"learning rate must be above 0, got {config.lr}")
    preset = PRESETS[config.preset].with_lr(config.lr or None)
    device = device or resolve_device(config.device)
    precision = precisions.resolve(config.precision, device)
    world = dist.get_world_size() if dist is not None else 1
    model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    for name in LAYERS:
        getattr(model, name).weight.requires_grad_(name not in config.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ResJNDError("every layer is frozen: nothing to train")
    opt: torch.optim.Optimizer
    if preset.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=preset.lr, momentum=preset.momentum, weight_decay=preset.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=preset.lr, weight_decay=preset.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=preset.step_epochs or 10**9, gamma=preset.gamma)
    net: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    history: dict[str, Any] = {
        "config": asdict(config),
        "precision": precision,
        "hyperparameters": asdict(preset),
        "data": data.summary,
        "world_size": world,
        "base_weights": model.provenance.weights,
        "base_sha256": model.provenance.origin_sha256,
        "architecture": {"channels": model.channels, "recursions": model.recursions},
        "loss": "MSE per pixel and channel, [0, 1] units",
        "epochs": [],
    }
    torch.manual_seed(config.seed)
    files = RunFiles(out, dist is None or dist.get_rank() == 0)
    run = _Run(model, net, params, opt, sched, preset, data, files, history, device, precision, world, dist, config)
    if resume is not None:
        run.history, run.start_epoch, run.best, data_state = resume_run(
            resume, config, override, model, opt, sched, device
        )
        record_what_runs(
            run.history, run.start_epoch, hyperparameters=asdict(preset), data=data.summary, precision=precision
        )
        files.adopt(resume)
        data.load_state(data_state)
    run.steps = data.steps()
    return run
