"""The Fine-tune widget's worker, Qt-free: a :class:`FinetuneJob` of plain values in,
typed training events out, an :class:`~._work.Outcome` holding the
:class:`~napari_resjnd.core.training.finetune.FinetuneResult` at the end. Tested without a viewer."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.events import Event, Status
from ..core.training.finetune import FinetuneConfig, FinetuneResult, iter_finetune
from ..core.training.pairs import Box, load_pair_folder, make_pair
from ..core.weights import load_model
from ._work import Outcome, ensure_weights, guarded


@dataclass(frozen=True)
class FinetuneJob:
    """Everything a run needs, as plain data (no layers, no widgets)."""

    weights: str
    out: Path
    config: FinetuneConfig
    pristine: np.ndarray | None = None
    target: np.ndarray | None = None
    name: str = "pair"
    boxes: tuple[Box, ...] | None = None
    mask: np.ndarray | None = None
    folder: str | None = None


def train(job: FinetuneJob, stop: threading.Event) -> Generator[Event, None, Outcome[FinetuneResult]]:
    """Worker body: yields typed events (download, status, training), returns an
    :class:`~._work.Outcome` holding the :class:`FinetuneResult`. Never raises."""
    return (yield from guarded("ResJND fine-tuning", _train(job, stop)))


def _train(job: FinetuneJob, stop: threading.Event) -> Generator[Event, None, FinetuneResult]:
    yield from ensure_weights(job.weights, stop)
    yield Status("loading weights and data…")
    model = load_model(job.weights)  # a fresh copy: training changes it in place
    if job.folder:
        pairs = load_pair_folder(job.folder)
        boxes = masks = None
    else:
        assert job.pristine is not None and job.target is not None
        pairs = [make_pair(job.pristine, job.target, job.name)]
        boxes = {0: list(job.boxes)} if job.boxes else None
        masks = {0: job.mask} if job.mask is not None else None
    return (
        yield from iter_finetune(model, pairs, job.out, job.config, boxes=boxes, masks=masks, should_stop=stop.is_set)
    )
