"""The files of a run writing ``ft.safetensors``: the best weights there, the loss
history ``ft.json``, and ``ft.resume.pt`` (model, optimiser, scheduler, epoch,
history and RNG states, loadable with ``weights_only=True``), with the checks a
resume needs: a damaged or foreign file, or settings that differ from the
recorded run, are one-line errors."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

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
