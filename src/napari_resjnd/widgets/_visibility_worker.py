"""The Visibility widget's worker bodies, Qt-free: plain values in, typed events
out, an :class:`~._work.Outcome` back (tested without a viewer).

- :func:`predict_visibility`: a JND map for the pristine image, then the
  per-pixel detection probability and ``p_detect`` of the distorted one on the
  job's display (and, when asked, ColorVideoVDP's JOD and heatmap beside it);
- :func:`prepare_test`: the JND map of every image x model of a visibility test,
  as the :class:`~napari_resjnd.core.visibility.psychophysics.stimuli.ConditionStimuli` the
  trial loop draws its stimuli from.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import Cancelled
from ..core.events import Event, Status
from ..core.visibility.detection import Visibility, VisibilityParams, visibility
from ..core.visibility.psychophysics.stimuli import ConditionStimuli
from ..core.visibility.reference import Reference
from ..core.visibility.viewing import DEFAULT_VIEWING, ViewingConditions
from ..core.weights import DEFAULT_WEIGHTS
from ._work import Outcome, ensure_weights, guarded


@dataclass(frozen=True)
class VisibilityJob:
    pristine: np.ndarray
    distorted: np.ndarray
    model: str  # a source of core.maps (a learned or classic model, or uniform)
    weights: str = DEFAULT_WEIGHTS
    viewing: ViewingConditions = DEFAULT_VIEWING
    params: VisibilityParams = field(default_factory=VisibilityParams)
    #: Also ColorVideoVDP's JOD and heatmap.
    reference: bool = False


@dataclass(frozen=True)
class VisibilityResult:
    visibility: Visibility
    reference: Reference | None = None


@dataclass(frozen=True)
class VisibilityTestJob:
    #: Image name -> pixels.
    images: dict[str, np.ndarray]
    models: tuple[str, ...]
    seed: int = 0
    weights: str = DEFAULT_WEIGHTS


def _jnd(model: str, image: np.ndarray, weights: str, stop: threading.Event) -> Generator[Event, None, np.ndarray]:
    from ..core.maps import jnd_map, source

    if source(model).needs_weights:
        yield from ensure_weights(weights, stop)
    return jnd_map(model, image, weights=weights, should_stop=stop.is_set)


def predict_visibility(job: VisibilityJob, stop: threading.Event) -> Generator[Event, None, Outcome[VisibilityResult]]:
    """Worker body of *Predict visibility*; never raises."""
    return (yield from guarded("ResJND visibility", _predict(job, stop)))


def _predict(job: VisibilityJob, stop: threading.Event) -> Generator[Event, None, VisibilityResult]:
    yield Status(f"JND map ({job.model})…")
    jnd = yield from _jnd(job.model, job.pristine, job.weights, stop)
    if stop.is_set():
        raise Cancelled("visibility cancelled")
    vis = visibility(job.pristine, job.distorted, jnd, job.params, model=job.model, viewing=job.viewing)
    ref = None
    if job.reference:
        from ..core.visibility import reference

        yield Status("ColorVideoVDP…")
        ref = reference.evaluate(job.pristine, job.distorted, job.viewing)
    return VisibilityResult(vis, ref)


def prepare_test(
    job: VisibilityTestJob, stop: threading.Event
) -> Generator[Event, None, Outcome[dict[tuple[str, str], ConditionStimuli]]]:
    """Worker body that readies a visibility test's stimuli; never raises."""
    return (yield from guarded("ResJND visibility test", _prepare(job, stop)))


def _prepare(
    job: VisibilityTestJob, stop: threading.Event
) -> Generator[Event, None, dict[tuple[str, str], ConditionStimuli]]:
    out = {}
    for name, image in job.images.items():
        for model in job.models:
            if stop.is_set():
                raise Cancelled("visibility test cancelled")
            yield Status(f"JND map of {name} ({model})…")
            jnd = yield from _jnd(model, image, job.weights, stop)
            out[(name, model)] = ConditionStimuli(image, jnd, seed=job.seed)
    return out
