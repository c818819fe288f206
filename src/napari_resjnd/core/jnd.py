"""Residual -> JND map, and the authors' max-normalisation to 8 bits.

The JND map is the per-pixel root mean square over R, G, B of |CPL - input|
in grey levels (x 255). It is absolute: a value of 3 means the CPL image may
differ from the input by about 3 grey levels there. The authors' test script
instead divides each map by its own maximum and writes 8 bits, which makes
maps of different images incomparable; :func:`normalise_max` reproduces it
for comparison with their files.
"""

from __future__ import annotations

import numpy as np


def residual_grey_levels(cpl: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Signed residual CPL - input in grey levels (both in [0, 1] units)."""
    return (np.asarray(cpl, np.float32) - np.asarray(image, np.float32)) * np.float32(255)


def jnd_from_residual(residual: np.ndarray) -> np.ndarray:
    """Absolute JND (... x H x W) from a residual in grey levels (... x H x W x 3)."""
    r = np.asarray(residual, np.float32)
    return np.sqrt(np.mean(r * r, axis=-1, dtype=np.float32))


def jnd_from_cpl(cpl: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Absolute JND from a CPL image and its input, both RGB in [0, 1]."""
    return jnd_from_residual(residual_grey_levels(cpl, image))


def normalise_max(jnd: np.ndarray) -> np.ndarray:
    """The authors' 8-bit map: jnd / max(jnd) * 255, rounded half to even (as
    OpenCV's ``imwrite`` rounds floats). An all-zero map stays zero."""
    j = np.asarray(jnd, np.float64)
    peak = j.max() if j.size else 0.0
    if peak <= 0:
        return np.zeros(j.shape, np.uint8)
    return np.clip(np.rint(j / peak * 255), 0, 255).astype(np.uint8)


def to_uint8_absolute(jnd: np.ndarray) -> np.ndarray:
    """Absolute JND as 8 bits (1 grey level per step, clipped at 255)."""
    return np.clip(np.rint(np.asarray(jnd, np.float64)), 0, 255).astype(np.uint8)
