"""Typed progress events, and one helper that drives an event generator.

The long computations (:func:`~.inference.iter_predict`, :func:`~.weights.iter_fetch`,
:func:`~.finetune.iter_finetune`, :func:`~.training.iter_train`, the widgets'
workers) are generators: they yield these events and return their result. A
caller matches on the event's type (``isinstance`` or ``match``), never on a
string key; the CLI, the widgets and plain Python scripts see the same events.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar, Union


@dataclass(frozen=True)
class Status:
    """A stage of the work began."""

    #: One line for the user ("loading weights…").
    message: str


@dataclass(frozen=True)
class Download:
    """Bytes of a weights file arrived (first use of a registry entry)."""

    #: The registry name being downloaded.
    name: str
    #: Bytes received so far.
    done: int
    #: Bytes expected in all (0 while the server has not said).
    total: int

    @property
    def text(self) -> str:
        """ "downloading NAME: 0.4 of 1.2 MB"."""
        return f"downloading {self.name}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB"


@dataclass(frozen=True)
class TileDone:
    """Inference finished one tile of the image (or stack). The tile's result
    rides along, so a viewer can show it while the rest computes."""

    #: Tiles finished so far, over all planes.
    done: int
    #: Tiles in all.
    total: int
    #: The plane of the stack (0 for a single image).
    plane: int = 0
    #: The tile's core box (y0, y1, x0, x1) in pixels, end exclusive.
    box: tuple[int, int, int, int] | None = None
    #: The network's output on the box (h x w x 3, [0, 1]); the final result holds the same values.
    cpl: Any = None


@dataclass(frozen=True)
class TrainingStarted:
    """Training is set up: data split, steps counted, checkpoint (if resuming) read."""

    #: Patches in the training split.
    train_patches: int
    #: Patches in the validation split (0: no validation).
    val_patches: int
    #: Optimiser steps per epoch.
    steps: int
    #: The last epoch the run will reach.
    epochs: int
    #: Patch side in px.
    patch: int | None
    #: The first epoch this run trains (above 1 when resuming).
    start_epoch: int


@dataclass(frozen=True)
class TrainingStep:
    """One optimiser step was taken."""

    #: Epoch of the step, from 1.
    epoch: int
    #: Step within the epoch, from 1.
    step: int
    #: Steps per epoch.
    steps: int
    #: Mean squared error per element of this step's batch ([0, 1] units).
    loss: float
    #: Training throughput so far in this epoch.
    patches_per_s: float


@dataclass(frozen=True)
class EpochDone:
    """An epoch ended (epoch 0: the validation loss before the first step)."""

    #: The epoch that ended.
    epoch: int
    #: Mean training loss over the epoch (None for epoch 0).
    train_loss: float | None
    #: Validation loss (None where this epoch was not validated).
    val_loss: float | None
    #: Whether this epoch's weights were the best so far, and so were saved.
    best: bool


@dataclass(frozen=True)
class TrialShown:
    """CPL annotation: a trial is on screen, waiting for "same" or "different"."""

    #: Index of the patch being judged.
    patch: int
    #: Patches in the session.
    patches: int
    #: Patches whose critical level is already found.
    done: int
    #: The ladder level shown against the original (0: the original itself).
    level: int


@dataclass(frozen=True)
class AnnotationDone:
    """CPL annotation: every patch has its critical level; the target is assembled."""

    #: Each patch's critical level (the most distorted level judged the same).
    critical: tuple[int | None, ...]
    #: The target image's layer name.
    target: str
    #: The session file (JSON), for resuming and merging observers.
    session: str


@dataclass(frozen=True)
class Encoded:
    """A rate-distortion sweep coded, decoded and scored one stream."""

    #: Streams finished so far.
    done: int
    #: Streams in all.
    total: int
    #: The codec of this stream.
    codec: str
    #: The picture coded: ``none`` (the original) or the JND model that guided it.
    jnd: str
    #: Its quality setting.
    quality: int


#: What the training loop yields.
TrainingEvent = Union[TrainingStarted, TrainingStep, EpochDone]  # noqa: UP007 (a runtime alias)
#: Every event the core's generators yield.
Event = Union[Status, Download, TileDone, TrainingStarted, TrainingStep, EpochDone, Encoded]  # noqa: UP007 (a runtime alias)

E = TypeVar("E")
R = TypeVar("R")


def drive(gen: Generator[E, None, R], on_event: Callable[[E], object] | None = None) -> R:
    """Run ``gen`` to its end, handing each event to ``on_event``; return its result.

    The one loop behind :func:`~.inference.predict`, :func:`~.finetune.finetune`
    and the CLI's progress output.
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as end:
            return end.value
        if on_event is not None:
            on_event(event)
