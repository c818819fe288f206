"""The files of a run writing ``ft.safetensors``: the best weights there, the loss
history ``ft.json``, and ``ft.resume.pt`` (model, optimiser, scheduler, epoch,
history and RNG states, loadable with ``weights_only=True``), with the checks a
resume needs: a damaged or foreign file, or settings that differ from the
recorded run, are one-line errors."""

from __future__ import annotations

import errno
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from ..errors import ResJNDError
from ..files import atomic_write, disk_full, json_text, json_writer
from ..model import ResJND
from ..weights import save_weights
from .config import FinetuneConfig

#: Settings a resumed run keeps from the run it continues (they shape the data or
#: the optimisation); changing one needs an explicit override, recorded in the history.
RESUME_KEYS = ("patch", "batch", "preset", "lr", "seed", "val_fraction", "val_by", "augment", "freeze", "val_every")
_STATE_KEYS = {"model", "optimizer", "scheduler", "epoch", "history", "rng", "torch_rng"}


def read_resume(checkpoint: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The resume state written beside ``checkpoint``, checked; a missing, damaged or
    foreign file is a one-line ``ValueError`` naming it."""
    p = resume_path(checkpoint)
    if not p.is_file():
        raise ResJNDError(f"{checkpoint}: no {p.name} beside it to resume from (every epoch of a run writes one)")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:
        why = (str(e).strip().splitlines() or ["empty or cut short"])[0]
        raise ResJNDError(f"{p}: not a napari-resjnd resume file ({type(e).__name__}: {why})") from None
    missing = _STATE_KEYS - set(state) if isinstance(state, dict) else _STATE_KEYS
    if missing:
        raise ResJNDError(f"{p}: not a napari-resjnd resume file (missing {sorted(missing)})")
    try:
        history = json.loads(state["history"])
        history["config"]["patch"], history["epochs"]
    except (TypeError, ValueError, KeyError) as e:
        raise ResJNDError(f"{p}: its training history is unreadable ({type(e).__name__}: {e})") from None
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


def _norm(value: Any) -> Any:
    """Compare JSON-read and in-memory settings alike (lists and tuples, ints and floats)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def resume_run(
    resume: str | Path,
    config: FinetuneConfig,
    override: tuple[str, ...],
    model: ResJND,
    opt: torch.optim.Optimizer,
    sched: Any,
    device: torch.device,
) -> tuple[dict[str, Any], int, float, Any]:
    """Load ``resume``'s state into the model, optimiser, scheduler and torch's RNG.

    Returns the continued history (overrides recorded in it), the first epoch
    to train, the best validation loss so far and the data's RNG state. The
    :data:`RESUME_KEYS` settings must equal the recorded ones unless overridden.
    """
    state = read_resume(resume, map_location=device)
    history: dict[str, Any] = json.loads(state["history"])
    now = asdict(config)
    changed = {
        k: (history["config"].get(k), now[k]) for k in RESUME_KEYS if _norm(history["config"].get(k)) != _norm(now[k])
    }
    refused = sorted(set(changed) - set(override))
    if refused:
        raise ResJNDError(
            "resuming "
            + "; ".join(
                f"{k} {changed[k][1]!r} differs from the {changed[k][0]!r} recorded in {resume}" for k in refused
            )
            + ": leave it out to keep the recorded value, or override it explicitly ("
            + ", ".join(f"--override {k}" for k in refused)
            + ")"
        )
    _refuse_other_architecture(resume, history, model)
    try:
        model.load_state_dict(state["model"])
        if "preset" not in changed:  # another preset is another optimiser: it starts afresh
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise ResJNDError(
            f"{resume_path(resume)} does not fit this network or optimiser ({str(e).splitlines()[0]})"
        ) from None
    if "lr" in changed and "preset" not in changed:
        _set_lr(opt, sched, config.lr)
    if changed:
        history.setdefault("overrides", []).append(
            {"from_epoch": int(state["epoch"]) + 1, **{k: {"was": a, "now": b} for k, (a, b) in changed.items()}}
        )
        history["config"] = {**history["config"], **{k: now[k] for k in changed}}
    history["config"]["epochs"] = config.epochs
    best = min((e["val_loss"] for e in history["epochs"] if e["val_loss"] is not None), default=math.inf)
    torch.set_rng_state(state["torch_rng"].cpu())
    return history, int(state["epoch"]) + 1, best, state["rng"]


def _set_lr(opt: torch.optim.Optimizer, sched: Any, lr: float | None) -> None:
    """An overridden learning rate in a restored optimiser (whose state holds the old
    one), keeping the schedule's decay so far."""
    if lr is None:
        return
    for group in opt.param_groups:
        decay = group["lr"] / group.get("initial_lr", group["lr"]) if group.get("initial_lr") else 1.0
        group["initial_lr"], group["lr"] = lr, lr * decay
    sched.base_lrs = [lr for _ in opt.param_groups]


def recorded_architecture(checkpoint: str | Path, history: dict[str, Any] | None = None) -> dict[str, int] | None:
    """Channels and recursions of the run that wrote ``checkpoint``: from its history,
    or for runs that did not record them there, from the weights' metadata."""
    arch = (history or json.loads(read_resume(checkpoint)["history"])).get("architecture")
    if not isinstance(arch, dict):
        try:
            from safetensors import safe_open

            with safe_open(str(checkpoint), framework="pt") as f:
                arch = json.loads((f.metadata() or {}).get("resjnd", "{}")).get("architecture")
        except Exception:  # a .pth, or no weights written yet: nothing recorded
            return None
    if not isinstance(arch, dict):
        return None
    try:
        return {"channels": int(arch["channels"]), "recursions": int(arch["recursions"])}
    except (KeyError, TypeError, ValueError):
        return None


def _refuse_other_architecture(resume: str | Path, history: dict[str, Any], model: ResJND) -> None:
    """A resumed run trains the recorded network: recursions are not in the weights'
    shapes, so another count would load silently and train a different network."""
    recorded = recorded_architecture(resume, history)
    if recorded is None:
        return
    now = {"channels": model.channels, "recursions": model.recursions}
    differ = [k for k in now if now[k] != recorded[k]]
    if differ:
        raise ResJNDError(
            "resuming "
            + "; ".join(f"{k} {now[k]} differs from the {recorded[k]} recorded in {resume}" for k in differ)
            + ": a resumed run trains the recorded network (its architecture cannot change); "
            + "leave --channels and --recursions out, or start a new run"
        )


def write_checkpoint(path: Path, save: Callable[[], object]) -> None:
    """``save()`` writes ``path`` atomically; a full disk reaches us as PyTorch's
    C++ error (``[enforce fail at inline_container.cc] ... file write failed``) or
    safetensors' own: one line naming the file; the previous file stays in place."""
    try:
        save()
    except Exception as e:
        text = str(e)
        full = getattr(e, "errno", None) == errno.ENOSPC or "file write failed" in text or disk_full(path.parent)
        if not (full or isinstance(e, OSError)):
            raise  # not the disk: a bug, with its traceback
        why = "the disk is full" if full else (getattr(e, "strerror", None) or text.splitlines()[0])
        raise ResJNDError(f"{path}: could not write it ({why}); the previous one is kept") from None


class RunFiles:
    """Writes a run's files: the best weights at ``out``, the history beside it, the
    resume state every epoch. Only the writer (rank 0 in a distributed run) writes."""

    def __init__(self, out: str | Path, writer: bool = True):
        self.out, self.writer = Path(out), writer

    def adopt(self, resume: str | Path) -> None:
        """A resumed run saving under a new name takes the best weights so far with it."""
        if self.writer and self.out.resolve() != Path(resume).resolve() and Path(resume).is_file():
            atomic_write(self.out, lambda t: shutil.copyfile(resume, t))

    def save_best(self, model: ResJND, history: dict[str, Any], best: float) -> None:
        if not self.writer:
            return
        training = {k: history[k] for k in ("config", "hyperparameters", "data", "loss")}
        scored = [e for e in history["epochs"] if e["val_loss"] is not None]
        training["best_epoch"] = min(scored, key=lambda e: e["val_loss"])["epoch"] if scored else None
        training["best_val_loss"] = best if math.isfinite(best) else None
        write_checkpoint(self.out, lambda: save_weights(model, self.out, training=training))

    def save_history(self, history: dict[str, Any]) -> None:
        if self.writer:
            atomic_write(history_path(self.out), json_writer(history))

    def save_state(
        self,
        epoch: int,
        model: ResJND,
        opt: torch.optim.Optimizer,
        sched: Any,
        history: dict[str, Any],
        data_state: Any,
    ) -> None:
        """The history, then the resume state (loadable with ``weights_only=True``)."""
        if not self.writer:
            return
        self.save_history(history)
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch,
            "history": json_text(history, indent=None),
            "rng": data_state,
            "torch_rng": torch.get_rng_state(),
        }
        path = resume_path(self.out)
        write_checkpoint(path, lambda: atomic_write(path, lambda t: torch.save(state, t)))
