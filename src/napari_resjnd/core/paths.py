"""Where the package keeps files: the weights cache and the fine-tuned models.

A leaf module (no imports from the package), so that the weights registry and
the int8 cache both take their folders from here without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variables that override where files live.
CACHE_ENV = "RESJND_CACHE_DIR"
MODELS_ENV = "RESJND_MODEL_DIR"


def cache_dir() -> Path:
    """Where downloaded weights live (``$RESJND_CACHE_DIR`` overrides)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-resjnd")) / "weights"


def models_dir() -> Path:
    """Where fine-tuned checkpoints live (``$RESJND_MODEL_DIR`` overrides)."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-resjnd")) / "models"
