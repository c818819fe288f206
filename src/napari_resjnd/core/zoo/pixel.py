"""Pixel-domain models built on Chou & Li's two terms: Chou & Li 1995 and Yang et
al. 2005 (NAMM), as in OpenJND's ``Chou and Li/Matlab/main.m``.

- Luminance adaptation T_l from the background luminance bg (a 5 x 5 weighted
  mean): 17 (1 - sqrt(bg / 127)) + 3 below 128, 3/128 (bg - 127) + 3 above.
- Texture masking T_t = Gm (0.0001 bg + 0.115) + (0.5 - 0.01 bg), Gm the largest
  of four directional 5 x 5 gradients.
- Chou & Li combine them by the paper's max(T_l, T_t). The reference code
  combines them by the NAMM sum T_l + T_t - 0.3 min(T_l, T_t) instead (its
  ``'Chou'`` type); :func:`chou1995_terms` gives the two terms for that check.
- Yang et al. weight Gm by edge protection, 1 - 0.95 x (Canny edges at T = 0.5,
  dilated by an 11 x 11 square), smoothed by a 7 x 7 Gaussian of sigma 0.8, and
  combine by the NAMM sum.

Borders are reflected (the reference pads with zeros, which puts false edges
along the border); the maps agree inside a 3-pixel border.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..images import luminance
from ._common import correlate, gaussian_kernel, matlab_round
from .canny import canny

#: Background-luminance weights (5 x 5, sum 32).
BACKGROUND = np.array([[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 0, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]], np.float64)
#: The four directional gradient operators (each / 16).
GRADIENTS = np.array(
    [
        [[0, 0, 0, 0, 0], [1, 3, 8, 3, 1], [0, 0, 0, 0, 0], [-1, -3, -8, -3, -1], [0, 0, 0, 0, 0]],
        [[0, 0, 1, 0, 0], [0, 8, 3, 0, 0], [1, 3, 0, -3, -1], [0, 0, -3, -8, 0], [0, 0, -1, 0, 0]],
        [[0, 0, 1, 0, 0], [0, 0, 3, 8, 0], [-1, -3, 0, 3, 1], [0, -8, -3, 0, 0], [0, 0, -1, 0, 0]],
        [[0, 1, 0, -1, 0], [0, 3, 0, -3, 0], [0, 8, 0, -8, 0], [0, 3, 0, -3, 0], [0, 1, 0, -1, 0]],
    ],
    np.float64,
)
#: The NAMM overlap factor.
C_TG = 0.3


def background(y: np.ndarray) -> np.ndarray:
    return correlate(y, BACKGROUND) / 32


def max_gradient(y: np.ndarray) -> np.ndarray:
    return np.max([np.abs(correlate(y, g)) for g in GRADIENTS], axis=0) / 16


def luminance_adaptation(bg: np.ndarray) -> np.ndarray:
    return np.where(bg <= 127, 17 * (1 - np.sqrt(np.clip(bg, 0, None) / 127)) + 3, 3 / 128 * (bg - 127) + 3)


def lifted_threshold(y: np.ndarray) -> np.ndarray:
    """T_l at the background as Wu et al.'s code has it: the background floored to
    a grey level, and dark ones lifted (bg <= 127 -> round(32 + bg x 95 / 127))."""
    bg = np.floor(background(y))
    return luminance_adaptation(np.where(bg <= 127, matlab_round(32 + bg * (127 - 32) / 127), bg))


def texture_masking(gm: np.ndarray, bg: np.ndarray) -> np.ndarray:
    return gm * (0.0001 * bg + 0.115) + (0.5 - 0.01 * bg)


def namm(tl: np.ndarray, tt: np.ndarray) -> np.ndarray:
    """The nonlinear additivity model for masking: T_l + T_t - 0.3 min(T_l, T_t)."""
    return tl + tt - C_TG * np.minimum(tl, tt)


def chou1995_terms(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(luminance adaptation, texture masking), grey levels."""
    y = luminance(image)
    bg = background(y)
    return luminance_adaptation(bg), texture_masking(max_gradient(y), bg)


def chou1995(image: np.ndarray) -> np.ndarray:
    """Chou & Li 1995: the larger of luminance adaptation and texture masking."""
    tl, tt = chou1995_terms(image)
    return np.maximum(tl, tt).astype(np.float32)


def edge_protection(y: np.ndarray, threshold: float = 0.5, side: int = 11) -> np.ndarray:
    """1 - 0.95 x dilated Canny edges, smoothed (7 x 7 Gaussian, sigma 0.8): masking
    is weaker at edges, where the eye notices distortion more."""
    edges = ndimage.binary_dilation(canny(y, threshold), np.ones((side, side), bool))
    return correlate(1 - 0.95 * edges.astype(np.float64), gaussian_kernel(7, 0.8))


def yang2005(image: np.ndarray) -> np.ndarray:
    """Yang et al. 2005 (NAMM): luminance adaptation and edge-protected texture
    masking, combined by the NAMM sum."""
    y = luminance(image)
    bg = background(y)
    tt = texture_masking(max_gradient(y) * edge_protection(y), bg)
    return namm(luminance_adaptation(bg), tt).astype(np.float32)
