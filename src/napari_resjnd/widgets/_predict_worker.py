"""The Predict widget's worker: plain settings in, typed progress out, an
:class:`~._work.Outcome` back; no widgets, no layers (testable without a viewer)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..core.devices import AUTO
from ..core.events import Event, Status, TileDone
from ..core.images import to_unit_float
from ..core.inference import Prediction, iter_predict, predict
from ..core.jnd import jnd_from_residual
from ..core.model import ResJND
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
    #: Show each tile's result as it finishes (one-plane runs of ResJND).
    live: bool = True
    #: The (y, x) pixel the viewer looks at: its tiles run first.
    first: tuple[float, float] | None = None


@dataclass(frozen=True)
class TilePreview:
    """One finished tile, ready to paint: the final values of that box."""

    #: (y0, y1, x0, x1) in the plane's pixels.
    box: tuple[int, int, int, int]
    #: The plane's size (height, width).
    size: tuple[int, int]
    #: CPL (h x w x 3, [0, 1]), residual (h x w x 3, grey levels) and JND (h x w) of the box.
    cpl: np.ndarray
    residual: np.ndarray
    jnd: np.ndarray


def compute(
    store: ModelStore, settings: PredictSettings, data: np.ndarray, rgb: bool, stop: threading.Event
) -> Generator[Event | TilePreview, None, Outcome[Prediction]]:
    """Worker body: yields typed events (:class:`~napari_resjnd.core.events.Status`,
    :class:`~napari_resjnd.core.events.Download`, :class:`~napari_resjnd.core.events.TileDone`),
    returns an :class:`~._work.Outcome` holding the :class:`Prediction`. Never raises."""
    return (yield from guarded("ResJND prediction", _predict(store, settings, data, rgb, stop)))


def _predict(
    store: ModelStore, settings: PredictSettings, data: np.ndarray, rgb: bool, stop: threading.Event
) -> Generator[Event | TilePreview, None, Prediction]:
    if settings.weights.startswith(CLASSIC):
        from ..core.maps import predict_classic

        yield Status("computing the classic JND map…")
        return predict_classic(settings.weights[len(CLASSIC) :], data, rgb=rgb)
    yield from ensure_weights(settings.weights, stop)
    yield Status("loading weights…")
    model = store.get(settings.weights)
    yield Status("running…")
    live = settings.live and data.ndim == (3 if rgb else 2)
    if live and settings.first is not None and data.shape[0] * data.shape[1] > PEEK_ABOVE:
        yield _peek(model, data, settings, stop)
    steps = iter_predict(
        model,
        data,
        tile=settings.tile,
        device=settings.device,
        precision=settings.precision,
        should_stop=stop.is_set,
        rgb=rgb,
        first=settings.first,
    )
    return (yield from (_with_previews(steps, data) if live else steps))


#: The side (px) of the first look at the view on a big image: one small tile, a few
#: seconds even on a slow CPU, computed before the run's own tiles (which it does
#: not change: the final result is the run's).
PEEK = 128
#: Images over this many pixels get that first look.
PEEK_ABOVE = 1_000_000


def _peek(model: ResJND, data: np.ndarray, settings: PredictSettings, stop: threading.Event) -> TilePreview:
    """The network on a PEEK-px box around ``settings.first`` (with its halo, so the
    values are those the run's tiles give there, up to float rounding)."""
    h, w, halo = data.shape[0], data.shape[1], model.receptive_radius
    assert settings.first is not None
    y0 = int(np.clip(round(settings.first[0]) - PEEK // 2, 0, max(0, h - PEEK)))
    x0 = int(np.clip(round(settings.first[1]) - PEEK // 2, 0, max(0, w - PEEK)))
    y1, x1 = min(h, y0 + PEEK), min(w, x0 + PEEK)
    py0, px0 = max(0, y0 - halo), max(0, x0 - halo)
    unit = to_unit_float(np.asarray(data[py0 : min(h, y1 + halo), px0 : min(w, x1 + halo)]))  # the crop alone
    crop = unit[..., :3] if unit.ndim == 3 else np.repeat(unit[..., None], 3, axis=-1)
    pred = predict(model, crop, device=settings.device, precision=settings.precision, should_stop=stop.is_set)
    assert pred.cpl is not None
    cpl = pred.cpl[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
    r = (cpl - crop[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]) * np.float32(255)
    return TilePreview((y0, y1, x0, x1), (h, w), cpl, r, jnd_from_residual(r))


def _with_previews(
    steps: Generator[TileDone, None, Prediction], data: np.ndarray
) -> Generator[TileDone | TilePreview, None, Prediction]:
    """``steps``' events, each tile of a run of several followed by its :class:`TilePreview` (computed
    here, in the worker, as :func:`~napari_resjnd.core.inference.iter_predict` does)."""
    size = (int(data.shape[0]), int(data.shape[1]))
    while True:
        try:
            ev = next(steps)
        except StopIteration as done:
            return done.value
        yield ev
        if ev.box is not None and ev.cpl is not None and ev.total > 1:  # one tile is the whole result
            y0, y1, x0, x1 = ev.box
            x = to_unit_float(np.asarray(data[y0:y1, x0:x1]))  # the tile alone: never a copy of the whole image
            x = x[..., :3] if x.ndim == 3 else x[..., None]
            r = (ev.cpl - x) * np.float32(255)
            yield TilePreview(ev.box, size, ev.cpl, r, jnd_from_residual(r))


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
