"""The Predict widget's worker: plain settings in, typed progress out, an
:class:`Outcome` back; no widgets, no layers (testable without a viewer)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from ..core.inference import Cancelled, Prediction, iter_predict
from ..core.weights import REGISTRY, WeightsError, is_cached, iter_fetch
from . import _layers
from ._models import CLASSIC, ModelStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictSettings:
    """What the user asked for: plain values, safe to hand to a worker."""

    weights: str
    device: str = "auto"
    precision: str = "auto"
    tile: int | None = None
    outputs: tuple[str, ...] = _layers.OUTPUTS
    scope: str = "current plane"


@dataclass
class Outcome:
    """How a run ended: a prediction, an error message, or cancelled."""

    prediction: Prediction | None = None
    error: str | None = None
    cancelled: bool = False
    #: The registry weights that could not be downloaded (offline, or a failed
    #: download): the widget then offers the ways out.
    missing_weights: str | None = None


def compute(store: ModelStore, settings: PredictSettings, data: np.ndarray, rgb: bool, stop: threading.Event):
    """Worker body: yields ``(done, total, message)``, returns an :class:`Outcome`.

    Never raises: errors become messages the widget shows as notifications.
    """
    try:
        if settings.weights.startswith(CLASSIC):
            from ..core.baselines import predict_classic

            yield 0, 1, "computing the classic JND map…"
            return Outcome(prediction=predict_classic(settings.weights[len(CLASSIC) :], data, rgb=rgb))
        if settings.weights in REGISTRY and not is_cached(settings.weights):
            entry = REGISTRY[settings.weights]
            yield 0, entry.size, f"downloading {entry.name} ({entry.size_text}, {entry.terms})…"
            try:
                for done, total in iter_fetch(settings.weights, should_stop=stop.is_set):
                    yield done, total, f"downloading {entry.name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB"
            except WeightsError as e:
                return Outcome(error=str(e), missing_weights=entry.name)
        yield 0, 0, "loading weights…"
        model = store.get(settings.weights)
        yield 0, 0, "running…"
        steps = iter_predict(
            model,
            data,
            tile=settings.tile,
            device=settings.device,
            precision=settings.precision,
            should_stop=stop.is_set,
            rgb=rgb,
        )
        while True:
            try:
                done, total = next(steps)
            except StopIteration as end:
                return Outcome(prediction=end.value)
            yield done, total, f"tile {done} of {total}"
    except Cancelled:
        return Outcome(cancelled=True)
    except (WeightsError, ValueError, OSError, MemoryError) as e:
        return Outcome(error=str(e))
    except Exception as e:  # a bug: say so, keep the viewer alive
        log.exception("ResJND prediction failed")
        return Outcome(error=f"{type(e).__name__}: {e}")


def check_layer(layer) -> str | None:
    """Why ``layer`` cannot be used, or None."""
    from napari.layers import Image

    if layer is None:
        return "no image layer: open or drag in an image first"
    if not isinstance(layer, Image):
        return f"layer {layer.name!r} is a {type(layer).__name__} layer; ResJND needs an Image layer"
    if layer.multiscale:
        return f"layer {layer.name!r} is multiscale; ResJND needs a single-scale image"
    dt = np.dtype(layer.dtype)
    if not (dt in (np.uint8, np.uint16, np.bool_) or np.issubdtype(dt, np.floating)):
        return f"layer {layer.name!r} has pixel type {dt}; ResJND takes uint8, uint16 or float images"
    return None
