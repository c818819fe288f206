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
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write
from .inference import resolve_device, resolve_precision
from .model import ResJND
from .pairs import Box, Pair, PatchIndex, augment, checked_patch, cut, patch_origins, split
from .weights import save_weights

LAYERS = ("input", "conv1", "conv2", "output")

#: Optimisation presets. "authors": the ResJND training recipe. "finetune": for
#: starting from trained weights (Adam at a small rate, gradient clipping kept).
PRESETS = {
    "authors": {
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "clip": 0.4,
        "step_epochs": 100,
        "gamma": 0.1,
        "reduction": "sum",
    },
    "finetune": {
        "optimizer": "adam",
        "lr": 1e-4,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "clip": 0.4,
        "step_epochs": 0,
        "gamma": 0.1,
        "reduction": "mean",
    },
}


#: The patch side used when none is given and the images allow it.
DEFAULT_PATCH = 48


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters; ``lr=None`` takes the preset's."""

    epochs: int = 10
    #: Patch side in px; None: :data:`DEFAULT_PATCH`, or the pairs' own side when
    #: every pair has one size smaller than that (a folder of small patches).
    patch: int | None = None
    batch: int = 8
    preset: str = "finetune"
    lr: float | None = None
    seed: int = 0
    val_fraction: float = 0.2
    val_by: str = "patches"
    augment: bool = True
    freeze: tuple[str, ...] = ()
    patience: int = 5
    val_every: int = 1
    device: str = "auto"
    precision: str = "fp32"


@dataclass
class FinetuneResult:
    model: ResJND
    history: dict
    checkpoint: Path | None
    stopped: str  # "finished", "early stop", "stopped", "diverged"


#: Settings a resumed run keeps from the run it continues (they shape the data or
#: the optimisation); changing one needs an explicit override, recorded in the history.
RESUME_KEYS = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "val_by", "augment", "freeze", "val_every")
_STATE_KEYS = {"model", "optimizer", "scheduler", "epoch", "history", "rng", "torch_rng"}


def read_resume(checkpoint: str | Path, map_location="cpu") -> dict:
    """The resume state written beside ``checkpoint``, checked; a missing, damaged or
    foreign file is a one-line ``ValueError`` naming it."""
    p = resume_path(checkpoint)
    if not p.is_file():
        raise ValueError(f"{checkpoint}: no {p.name} beside it to resume from (every epoch of a run writes one)")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:
        why = (str(e).strip().splitlines() or ["empty or cut short"])[0]
        raise ValueError(f"{p}: not a napari-resjnd resume file ({type(e).__name__}: {why})") from None
    missing = _STATE_KEYS - set(state) if isinstance(state, dict) else _STATE_KEYS
    if missing:
        raise ValueError(f"{p}: not a napari-resjnd resume file (missing {sorted(missing)})")
    try:
        history = json.loads(state["history"])
        history["config"]["patch"], history["epochs"]
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{p}: its training history is unreadable ({type(e).__name__}: {e})") from None
    return state


def recorded_config(checkpoint: str | Path) -> FinetuneConfig:
    """The configuration of the run that wrote ``checkpoint``'s resume file."""
    cfg = json.loads(read_resume(checkpoint)["history"])["config"]
    known = {f.name for f in fields(FinetuneConfig)}
    cfg = {k: v for k, v in cfg.items() if k in known}
    cfg["freeze"] = tuple(cfg.get("freeze") or ())
    return FinetuneConfig(**cfg)


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


class MemoryData:
    """Patches cut from pairs held in memory (fine-tuning on annotated images).

    Batches come from one seeded generator whose state the checkpoints keep, so a
    resumed run continues exactly."""

    def __init__(self, pairs: list[Pair], config: FinetuneConfig, boxes=None, masks=None):
        if not pairs:
            raise ValueError("no training pairs")
        sizes = {p.name: p.pristine.shape[:2] for p in pairs}
        config = replace(config, patch=checked_patch(sizes, config.patch, DEFAULT_PATCH))
        self.pairs, self.config = pairs, config
        origins = [
            patch_origins(p, config.patch, boxes=(boxes or {}).get(i), mask=(masks or {}).get(i))
            for i, p in enumerate(pairs)
        ]
        self.train, self.val = split(pairs, origins, config.val_fraction, config.val_by, config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.summary = {
            "pairs": [p.name for p in pairs],
            "patch": config.patch,
            "train_patches": len(self.train),
            "val_patches": len(self.val),
            "annotated": sorted(set(boxes or {}) | set(masks or {})),
        }

    def steps(self) -> int:
        return math.ceil(len(self.train) / self.config.batch)

    def train_batches(self, epoch: int, device):
        aug = self.rng if self.config.augment else None
        for b in _batches(self.train, self.config.batch, self.rng):
            yield _tensors(self.pairs, b, self.config.patch, device, aug)

    def val_batches(self, device, batch: int = 16):
        for b in _batches(self.val, batch, None):
            yield _tensors(self.pairs, b, self.config.patch, device)

    def state(self) -> str:
        return json.dumps(self.rng.bit_generator.state)

    def load_state(self, text: str) -> None:
        self.rng.bit_generator.state = json.loads(text)


def evaluate_loss(model, batches, device, precision="fp32", dist=None) -> float:
    """Mean squared error per element over ``batches`` (summed over ranks)."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    with torch.no_grad(), _autocast(device, precision):
        for x, y in batches:
            total[0] += float(torch.sum((model(x).float() - y) ** 2))
            total[1] += y.numel()
    if dist is not None:
        dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] else math.nan


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
    override: tuple[str, ...] = (),
) -> Generator[dict, None, FinetuneResult]:
    """Fine-tune ``model`` in place on pairs in memory; yields event dicts, returns
    a :class:`FinetuneResult`.

    Events: ``{"kind": "start", ...}``, ``{"kind": "step", "epoch", "step", "steps",
    "loss"}`` after every optimiser step, ``{"kind": "epoch", "epoch", "train_loss",
    "val_loss", "best"}`` after each epoch (epoch 0: before the first step).
    ``boxes``/``masks`` map a pair's index to its annotation.
    """
    check_config(config)
    data = MemoryData(pairs, config, boxes, masks)
    return (
        yield from run_training(
            model, data, out, data.config, resume=resume, should_stop=should_stop, override=override
        )
    )


def _norm(value):
    """Compare JSON-read and in-memory settings alike (lists and tuples, ints and floats)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def check_config(config: FinetuneConfig) -> None:
    if config.preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {config.preset!r}")
    bad = set(config.freeze) - set(LAYERS)
    if bad:
        raise ValueError(f"cannot freeze {sorted(bad)}; layers are {list(LAYERS)}")
    if (config.patch is not None and config.patch < 8) or config.batch < 1 or config.epochs < 0 or config.val_every < 1:
        raise ValueError("patch must be >= 8 px, batch >= 1, epochs >= 0 and val_every >= 1")


def run_training(
    model: ResJND,
    data,
    out: str | Path,
    config: FinetuneConfig,
    *,
    resume=None,
    should_stop=None,
    dist=None,
    device=None,
    override: tuple[str, ...] = (),
) -> Generator[dict, None, FinetuneResult]:
    """The one training loop, for fine-tuning (:class:`MemoryData`) and for
    dataset-scale training (``core.training.FolderData``, optionally distributed).

    ``data`` gives ``steps()``, ``train_batches(epoch, device)``, ``val_batches(device)``,
    ``summary`` and ``state()``/``load_state()``. With ``dist`` (``torch.distributed``,
    initialised), gradients are averaged by DistributedDataParallel, losses are
    summed over ranks, and only rank 0 writes files. On ``resume`` the
    :data:`RESUME_KEYS` settings must equal the recorded ones, except those named
    in ``override`` (recorded in the history as overrides).
    """
    if config.lr is not None and not config.lr > 0:
        raise ValueError(f"learning rate must be above 0, got {config.lr}")
    hp = {**PRESETS[config.preset], **({"lr": config.lr} if config.lr else {})}
    out = Path(out)
    device = device or resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    world = dist.get_world_size() if dist is not None else 1
    writer = dist is None or dist.get_rank() == 0

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
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    base = dict(getattr(model, "provenance", {}) or {})
    history = {
        "config": asdict(config),
        "precision": precision,
        "hyperparameters": hp,
        "data": data.summary,
        "world_size": world,
        "base_weights": base.get("weights"),
        "base_sha256": base.get("base_sha256", base.get("sha256")),
        "loss": "MSE per pixel and channel, [0, 1] units",
        "epochs": [],
    }
    torch.manual_seed(config.seed)
    start_epoch, best = 1, math.inf
    if resume is not None:
        state = read_resume(resume, map_location=device)
        recorded = json.loads(state["history"])
        now = asdict(config)
        changed = {
            k: (recorded["config"].get(k), now[k])
            for k in RESUME_KEYS
            if _norm(recorded["config"].get(k)) != _norm(now[k])
        }
        refused = sorted(set(changed) - set(override))
        if refused:
            raise ValueError(
                "resuming "
                + "; ".join(
                    f"{k} {changed[k][1]!r} differs from the {changed[k][0]!r} recorded in {resume}" for k in refused
                )
                + ": leave it out to keep the recorded value, or override it explicitly ("
                + ", ".join(f"--override {k}" for k in refused)
                + ")"
            )
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(
                f"{resume_path(resume)} does not fit this network or optimiser ({str(e).splitlines()[0]})"
            ) from None
        history = recorded
        if changed:
            history.setdefault("overrides", []).append(
                {"from_epoch": int(state["epoch"]) + 1, **{k: {"was": a, "now": b} for k, (a, b) in changed.items()}}
            )
            history["config"] = {**history["config"], **{k: now[k] for k in changed}}
        history["config"]["epochs"] = config.epochs
        if writer and Path(out).resolve() != Path(resume).resolve() and Path(resume).is_file():
            import shutil  # the best weights so far go with the run to its new name

            atomic_write(out, lambda t: shutil.copyfile(resume, t))
        start_epoch = int(state["epoch"]) + 1
        best = min((e["val_loss"] for e in history["epochs"] if e["val_loss"] is not None), default=math.inf)
        data.load_state(state["rng"])
        torch.set_rng_state(state["torch_rng"].cpu())
    steps = data.steps()
    has_val = data.summary.get("val_patches", 0) > 0
    yield {
        "kind": "start",
        "train_patches": data.summary["train_patches"],
        "val_patches": data.summary["val_patches"],
        "steps": steps,
        "epochs": config.epochs,
        "patch": config.patch,
        "start_epoch": start_epoch,
    }

    def save_best():
        if not writer:
            return
        training = {k: history[k] for k in ("config", "hyperparameters", "data", "loss")}
        scored = [e for e in history["epochs"] if e["val_loss"] is not None]
        training["best_epoch"] = min(scored, key=lambda e: e["val_loss"])["epoch"] if scored else None
        training["best_val_loss"] = best if math.isfinite(best) else None
        model.provenance = {**base, "weights": base.get("weights")}
        save_weights(model, out, training=training)

    def save_state(epoch):
        if not writer:
            return
        atomic_write(history_path(out), lambda t: Path(t).write_text(json.dumps(history, indent=2)))
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch,
            "history": json.dumps(history),
            "rng": data.state(),
            "torch_rng": torch.get_rng_state(),
        }
        atomic_write(resume_path(out), lambda t: torch.save(state, t))

    if not history["epochs"]:  # a fresh run (a resumed one has its epoch 0 already)
        v0 = evaluate_loss(model, data.val_batches(device), device, precision, dist) if has_val else None
        history["epochs"].append({"epoch": 0, "train_loss": None, "val_loss": v0})
        best = v0 if v0 is not None else math.inf
        save_best()
        save_state(0)
        yield {"kind": "epoch", "epoch": 0, "train_loss": None, "val_loss": v0, "best": True}

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
            with _autocast(device, precision):
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
            yield {
                "kind": "step",
                "epoch": epoch,
                "step": step,
                "steps": steps,
                "loss": float(step_total[0] / step_total[1]),
                "patches_per_s": float(total[1]) / (3 * config.patch**2) / (time.perf_counter() - t0),
            }
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
        yield {"kind": "epoch", "epoch": epoch, "train_loss": train_loss, "val_loss": v, "best": improved}
        if config.patience and since_best >= config.patience:
            stopped = "early stop"
            break

    history["stopped"] = stopped
    if writer:
        atomic_write(history_path(out), lambda t: Path(t).write_text(json.dumps(history, indent=2)))
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


__all__ = ["PRESETS", "FinetuneConfig", "FinetuneResult", "finetune", "iter_finetune"]
