"""The Evaluate widget's worker, Qt-free: an :class:`EvaluateJob` of plain values in,
status events out, an :class:`~._work.Outcome` holding the :class:`Evaluation`.
The numbers come from :mod:`napari_resjnd.core.research.evaluate`, as for ``resjnd evaluate``."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..core.errors import Cancelled, ResJNDError
from ..core.events import Event, Status
from ..core.research import evaluate as ev
from ._work import Outcome, guarded


@dataclass(frozen=True)
class EvaluateJob:
    image: np.ndarray
    names: tuple[str, ...]  # classic models and controls
    given: dict  # JND layers: name -> 2-D map
    targets: tuple[float, ...]
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation found: the maps in the order asked, a result per map and target."""

    order: list[str]
    results: list[ev.NoisyResult]
    #: (map, target PSNR, reason) for the maps whose noise could not reach a target.
    skipped: list[tuple[str, float, str]]


def evaluate(job: EvaluateJob, stop: threading.Event) -> Generator[Event, None, Outcome[Evaluation]]:
    """Worker body: yields :class:`~napari_resjnd.core.events.Status` events, returns an
    :class:`~._work.Outcome` holding the :class:`Evaluation`. Never raises."""
    return (yield from guarded("ResJND evaluation", _evaluate(job, stop)))


def _evaluate(job: EvaluateJob, stop: threading.Event) -> Generator[Event, None, Evaluation]:
    yield Status("computing JND maps…")
    maps = ev.jnd_maps(job.image, job.names, seed=job.seed, given=job.given)
    if stop.is_set():
        raise Cancelled("evaluation cancelled")
    yield Status(f"noise at {', '.join(f'{t:g}' for t in job.targets)} dB and metrics…")
    skipped: list[tuple[str, float, str]] = []
    results = ev.evaluate_image(job.image, maps, job.targets, seed=job.seed, skipped=skipped)
    if not results:
        raise ResJNDError(
            "no map's noise could reach the target PSNR: " + "; ".join(f"{n}: {w}" for n, _, w in skipped)
        )
    return Evaluation(list(maps), results, skipped)


def parse_targets(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise ResJNDError(f"target PSNR must be numbers separated by commas, got {text!r}") from None
    if not out:
        raise ResJNDError("give at least one target PSNR")
    return out
