"""The classic JND models as the rest of the package uses them: by name (see
:mod:`.zoo`), as a :class:`~.inference.Prediction` for the widgets and files,
and the luminance the evaluation measures on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .images import layout_of, plane_rgb, to_unit_float
from .zoo import ALIASES, classic_jnd, is_classic, resolve
from .zoo import MODELS as ZOO
from .zoo._common import luminance  # Y as the models see it

if TYPE_CHECKING:
    from .inference import Prediction

#: The classic models' names, in the order pickers list them.
MODELS = tuple(ZOO)
#: Their titles, by name.
TITLES = {name: m.title for name, m in ZOO.items()}

__all__ = [
    "ALIASES",
    "MODELS",
    "TITLES",
    "classic_jnd",
    "is_classic",
    "jnd_map",
    "luminance",
    "predict_classic",
    "resolve",
    "to_y",
]


def to_y(rgb255: np.ndarray) -> np.ndarray:
    """Y in [0, 255] (BT.601 weights) from H x W x 3 RGB in [0, 255]."""
    return np.asarray(rgb255, np.float64) @ np.array([0.299, 0.587, 0.114])


def jnd_map(name: str, image: np.ndarray, *, weights: str | None = None, **predict_kw: object) -> np.ndarray:
    """Any model's JND map by name: ``resjnd`` (ResJND with ``weights``, default the
    authors'; ``predict_kw`` go to :func:`~.inference.predict`) or a classic model of
    :mod:`.zoo`. H x W float32, grey levels."""
    if name == "resjnd":
        from .inference import predict
        from .weights import DEFAULT_WEIGHTS, load_model

        return predict(load_model(weights or DEFAULT_WEIGHTS), image, **predict_kw).jnd  # type: ignore[arg-type]
    return classic_jnd(name, image)


def predict_classic(name: str, image: np.ndarray, rgb: bool | None = None) -> Prediction:
    """A classic model's JND as a :class:`~.inference.Prediction` (no CPL or residual),
    plane by plane for stacks; weight-free and offline."""
    import time

    from .inference import Prediction

    t0 = time.perf_counter()
    a = np.asarray(image)
    layout = layout_of(a, rgb)
    unit = to_unit_float(a)
    planes = [classic_jnd(name, plane_rgb(unit, layout, i)) for i in range(layout.n_planes)]
    jnd = np.stack(planes).reshape((*layout.leading, layout.height, layout.width))
    meta = {
        "weights": f"classic:{resolve(name).name}",
        "model": resolve(name).title,
        "weights_sha256": None,
        "device": "cpu",
        "precision": "fp64",
        "tile": None,
        "seconds": round(time.perf_counter() - t0, 3),
        "input_shape": list(a.shape),
        "jnd_units": "grey levels (0-255), luminance Y",
    }
    return Prediction(cpl=None, residual=None, jnd=jnd, metadata=meta)
