"""Fine-tuning ResJND on pristine/target pairs: a generator that yields progress
and losses, checks a stop flag every step, and keeps the best checkpoint.

Files for a run writing ``ft.safetensors``: the best weights there (safetensors
with metadata, written atomically), ``ft.json`` (the loss history) and
``ft.resume.pt`` (model, optimiser, scheduler, epoch, history and RNG states,
loadable with ``weights_only=True``) for ``resume``.

Losses in the history are the mean squared error per pixel and channel in
[0, 1] units, whatever reduction the optimiser uses, so runs compare.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .inference import resolve_device, resolve_precision
from .model import ResJND
from .pairs import Box, Pair, PatchIndex, augment, cut, patch_origins, split
from .weights import save_weights

LAYERS = ("input", "conv1", "conv2", "output")

#: Optimisation presets. "authors": the ResJND training recipe. "finetune": for
#: starting from trained weights (Adam at a small rate, gradient clipping kept).
PRESETS = {
    "authors": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "clip": 0.4,
                "step_epochs": 100, "gamma": 0.1, "reduction": "sum"},
    "finetune": {"optimizer": "adam", "lr": 1e-4, "momentum": 0.0, "weight_decay": 0.0, "clip": 0.4,
                 "step_epochs": 0, "gamma": 0.1, "reduction": "mean"},
}


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters; ``lr=None`` takes the preset's."""

    epochs: int = 10
    patch: int = 48
    batch: int = 8
    preset: str = "finetune"
    lr: float | None = None
    seed: int = 0
    val_fraction: float = 0.2
    val_by: str = "patches"
    augment: bool = True
    freeze: tuple[str, ...] = ()
    patience: int = 5
    device: str = "auto"
    precision: str = "fp32"


@dataclass
class FinetuneResult:
    model: ResJND
    history: dict
    checkpoint: Path | None
    stopped: str  # "finished", "early stop", "stopped", "diverged"


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def history_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def resume_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint).with_suffix(".resume.pt")


def _batches(items: list[PatchIndex], batch: int, rng: np.random.Generator | None):
    order = rng.permutation(len(items)) if rng is not None else np.arange(len(items))
    for i in range(0, len(items), batch):
        yield [items[j] for j in order[i : i + batch]]


def _tensors(pairs, idxs, patch, device, rng=None):
    xs, ys = [], []
    for idx in idxs:
        a, b = cut(pairs, idx, patch)
        if rng is not None:
            a, b = augment(a, b, int(rng.integers(8)))
        xs.append(a)
        ys.append(b)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).to(device)
    y = torch.from_numpy(np.stack(ys)).permute(0, 3, 1, 2).to(device)
    return x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def evaluate_loss(model, pairs, items, patch, device, precision="fp32", batch=16) -> float:
    """Mean squared error per element over ``items`` (no augmentation)."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad(), _autocast(device, precision):
        for b in _batches(items, batch, None):
            x, y = _tensors(pairs, b, patch, device)
            total += float(torch.sum((model(x).float() - y) ** 2))
            n += y.numel()
    return total / max(n, 1)


def iter_finetune(
    model: ResJND,
    pairs: list[Pair],
    out: str | Path,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    boxes: dict[int, list[Box]] | None = None,
    masks: dict[int, np.ndarray] | None = None,
    resume: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[dict, None, FinetuneResult]:
    """Fine-tune ``model`` in place; yields event dicts, returns a :class:`FinetuneResult`.

    Events: ``{"kind": "start", ...}``, ``{"kind": "step", "epoch", "step", "steps",
    "loss"}`` after every optimiser step, ``{"kind": "epoch", "epoch", "train_loss",
    "val_loss", "best"}`` after each epoch (epoch 0: before the first step).
    ``boxes``/``masks`` map a pair's index to its annotation.
    """
    if config.preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {config.preset!r}")
    if not pairs:
        raise ValueError("no training pairs")
    bad = set(config.freeze) - set(LAYERS)
    if bad:
        raise ValueError(f"cannot freeze {sorted(bad)}; layers are {list(LAYERS)}")
    if config.patch < 8 or config.batch < 1 or config.epochs < 0:
        raise ValueError("patch must be >= 8 px, batch >= 1 and epochs >= 0")
    hp = {**PRESETS[config.preset], **({"lr": config.lr} if config.lr else {})}
    out = Path(out)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    origins = [
        patch_origins(p, config.patch, boxes=(boxes or {}).get(i), mask=(masks or {}).get(i))
        for i, p in enumerate(pairs)
    ]
    train, val = split(pairs, origins, config.val_fraction, config.val_by, config.seed)

    model.to(device=device, memory_format=torch.channels_last)
    for name in LAYERS:
        getattr(model, name).weight.requires_grad_(name not in config.freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("every layer is frozen: nothing to train")
    if hp["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    else:
        opt = torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=hp["step_epochs"] or 10**9, gamma=hp["gamma"])

    base = dict(getattr(model, "provenance", {}) or {})
    data_summary = {
        "pairs": [p.name for p in pairs], "patch": config.patch, "train_patches": len(train),
        "val_patches": len(val), "annotated": sorted(set((boxes or {})) | set(masks or {})),
    }
    history = {"config": asdict(config), "precision": precision, "hyperparameters": hp, "data": data_summary,
               "base_weights": base.get("weights"), "base_sha256": base.get("base_sha256", base.get("sha256")),
               "loss": "MSE per pixel and channel, [0, 1] units", "epochs": []}
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    start_epoch, best = 1, math.inf
    if resume is not None:
        state = torch.load(resume_path(resume), map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"]) + 1
        best = min((e["val_loss"] for e in history["epochs"]), default=math.inf)
        rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    steps = math.ceil(len(train) / config.batch)
    yield {"kind": "start", "train_patches": len(train), "val_patches": len(val), "steps": steps,
           "epochs": config.epochs, "start_epoch": start_epoch}

    def save_best():
        training = {k: history[k] for k in ("config", "hyperparameters", "data", "loss")}
        training["best_epoch"] = min(history["epochs"], key=lambda e: e["val_loss"])["epoch"]
        training["best_val_loss"] = best
        model.provenance = {**base, "weights": base.get("weights")}
        save_weights(model, out, training=training)

    def save_state(epoch):
        _atomic_write(history_path(out), lambda t: Path(t).write_text(json.dumps(history, indent=2)))
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "epoch": epoch, "history": json.dumps(history), "rng": json.dumps(rng.bit_generator.state),
                 "torch_rng": torch.get_rng_state()}
        _atomic_write(resume_path(out), lambda t: torch.save(state, t))

    if start_epoch == 1:
        v0 = evaluate_loss(model, pairs, val, config.patch, device, precision) if val else math.nan
        history["epochs"].append({"epoch": 0, "train_loss": None, "val_loss": v0})
        best = v0 if val else math.inf
        save_best()
        save_state(0)
        yield {"kind": "epoch", "epoch": 0, "train_loss": None, "val_loss": v0, "best": True}

    stopped, since_best = "finished", 0
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for epoch in range(start_epoch, config.epochs + 1):
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        for step, b in enumerate(_batches(train, config.batch, rng), 1):
            if should_stop is not None and should_stop():
                stopped = "stopped"
                break
            x, y = _tensors(pairs, b, config.patch, device, rng if config.augment else None)
            with _autocast(device, precision):
                pred = model(x).float()
            sq = torch.sum((pred - y) ** 2)
            loss = sq if hp["reduction"] == "sum" else sq / y.numel()
            if not torch.isfinite(loss):
                model.load_state_dict(last_good)
                stopped = "diverged"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, hp["clip"])
            opt.step()
            last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
            sq_value = float(sq.detach())
            total += sq_value
            n += y.numel()
            yield {"kind": "step", "epoch": epoch, "step": step, "steps": steps, "loss": sq_value / y.numel(),
                   "patches_per_s": (n / (3 * config.patch**2)) / (time.perf_counter() - t0)}
        if stopped != "finished":
            break
        sched.step()
        v = evaluate_loss(model, pairs, val, config.patch, device, precision) if val else math.nan
        improved = v < best if val else True
        history["epochs"].append({"epoch": epoch, "train_loss": total / max(n, 1), "val_loss": v,
                                  "seconds": round(time.perf_counter() - t0, 3), "lr": opt.param_groups[0]["lr"]})
        if improved:
            best, since_best = v, 0
            save_best()
        else:
            since_best += 1
        save_state(epoch)
        yield {"kind": "epoch", "epoch": epoch, "train_loss": total / max(n, 1), "val_loss": v, "best": improved}
        if config.patience and since_best >= config.patience:
            stopped = "early stop"
            break

    history["stopped"] = stopped
    _atomic_write(history_path(out), lambda t: Path(t).write_text(json.dumps(history, indent=2)))
    model.eval()
    return FinetuneResult(model=model, history=history, checkpoint=out, stopped=stopped)


def finetune(model, pairs, out, config: FinetuneConfig = FinetuneConfig(), *, on_event=None, **kw) -> FinetuneResult:
    """:func:`iter_finetune`, driven to the end; ``on_event(event)`` sees each event."""
    gen = iter_finetune(model, pairs, out, config, **kw)
    while True:
        try:
            ev = next(gen)
        except StopIteration as end:
            return end.value
        if on_event is not None:
            on_event(ev)


__all__ = ["FinetuneConfig", "FinetuneResult", "PRESETS", "finetune", "iter_finetune"]
