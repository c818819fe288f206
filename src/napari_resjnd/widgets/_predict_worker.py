"""The Predict widget's worker: plain settings in, typed progress out, an
:class:`~._work.Outcome` back; no widgets, no layers (testable without a viewer)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..core.devices import AUTO
from ..core.events import Event, Status
from ..core.inference import Prediction, iter_predict
from . import _layers
from ._models import CLASSIC, ModelStore
from ._work import Outcome, ensure_weights, guarded


@dataclass(frozen=True)
class PredictSettings:
    """What the user asked for: plain values, safe to hand to a worker."""

    weights: str
    device: str = AUTO
    precision: str = AUTO
    tile: int | None = None
    outputs: tuple[str, ...] = _layers.OUTPUTS
    scope: str = "current plane"


def compute(
    store: ModelStore, settings: PredictSettings, data: np.ndarray, rgb: bool, stop: threading.Event
) -> Generator[Event, None, Outcome[Prediction]]:
    """Worker body: yields typed events (:class:`~napari_resjnd.core.events.Status`,
    :class:`~napari_resjnd.core.events.Download`, :class:`~napari_resjnd.core.events.TileDone`),
    returns an :class:`~._work.Outcome` holding the :class:`Prediction`. Never raises."""
    return (yield from guarded("ResJND prediction", _predict(store, settings, data, rgb, stop)))


def _predict(
    store: ModelStore, settings: PredictSettings, data: np.ndarray, rgb: bool, stop: threading.Event
) -> Generator[Event, None, Prediction]:
    if settings.weights.startswith(CLASSIC):
        from ..core.baselines import predict_classic

        yield Status("computing the classic JND map…")
        return predict_classic(settings.weights[len(CLASSIC) :], data, rgb=rgb)
    yield from ensure_weights(settings.weights, stop)
    yield Status("loading weights…")
    model = store.get(settings.weights)
    yield Status("running…")
    return (
        yield from iter_predict(
            model,
            data,
            tile=settings.tile,
            device=settings.device,
            precision=settings.precision,
            should_stop=stop.is_set,
            rgb=rgb,
        )
    )


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
    if not (np.dtype(dt).newbyteorder("=") in (np.uint8, np.uint16, np.bool_) or np.issubdtype(dt, np.floating)):
        return f"layer {layer.name!r} has pixel type {dt}; ResJND takes uint8, uint16 or float images"
    return None
