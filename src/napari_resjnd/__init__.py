"""napari-resjnd: ResJND just-noticeable-difference maps, from Python, the CLI and napari.

The public API lives in the Qt-free core; importing this package never imports
napari or Qt (the widgets are loaded by napari through ``napari.yaml``).
"""

from .core.devices import available_devices
from .core.errors import Cancelled, ResJNDError
from .core.inference import Prediction, iter_predict, predict
from .core.jnd import jnd_from_cpl, jnd_from_residual, normalise_max
from .core.maps import jnd_map
from .core.model import RECEPTIVE_RADIUS, ResJND
from .core.training.finetune import FinetuneConfig, finetune, iter_finetune
from .core.weights import (
    DEFAULT_WEIGHTS,
    REGISTRY,
    WeightsError,
    fetch,
    load_model,
    save_weights,
)
from .core.zoo import MODELS as CLASSIC_MODELS

__version__ = "0.3.0"

__all__ = [
    "CLASSIC_MODELS",
    "DEFAULT_WEIGHTS",
    "RECEPTIVE_RADIUS",
    "REGISTRY",
    "Cancelled",
    "FinetuneConfig",
    "Prediction",
    "ResJND",
    "ResJNDError",
    "WeightsError",
    "available_devices",
    "fetch",
    "finetune",
    "iter_finetune",
    "iter_predict",
    "jnd_from_cpl",
    "jnd_from_residual",
    "jnd_map",
    "load_model",
    "normalise_max",
    "predict",
    "save_weights",
]
