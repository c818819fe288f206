"""Wu et al. 2017 (TIP), "Enhanced just noticeable difference model for images
with pattern complexity", as in the authors' code
(``func_JND_modeling_pattern_complexity.m`` in OpenJND's ``Wu et al (TIP)``).

- Luminance adaptation: 0.7 x Chou & Li's threshold at the background luminance,
  after lifting dark backgrounds (bg <= 127 -> round(32 + bg x 95 / 127)).
- Luminance contrast L_c: the standard deviation in a 5 x 5 window; its masking
  1.84 L_c^2.4 / (L_c^2 + 26^2).
- Pattern complexity P_c: the number of distinct orientation bins (12 degrees
  wide, plus one bin for smooth pixels, gradient < 5) among a pixel and its 8
  neighbours, for textured pixels (1 for smooth ones), smoothed by a 3 x 3
  Gaussian (sigma 1). Pattern masking L_c x 0.3 P_c^2.7 / (P_c^2 + 1).
- Edge protection: 1 - (Canny edges at threshold 60 / max gradient, capped at
  0.8, dilated by a 5 x 5 square), smoothed by a 5 x 5 Gaussian (sigma 0.8).
- Visual masking max(contrast masking, pattern masking x edge protection); the
  JND is the NAMM sum with the luminance adaptation.

Borders are reflected where the reference pads with zeros or forces values
(its L_c is 0 on a 2-pixel border, its complexity 1 on a 1-pixel border); the
maps agree further in.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..images import luminance
from ._common import correlate, gaussian_kernel, local_std, matlab_round
from .canny import canny
from .pixel import lifted_threshold, max_gradient, namm


def pattern_complexity(y: np.ndarray) -> np.ndarray:
    """Distinct orientation bins among each pixel and its 8 neighbours (smoothed)."""
    pad = np.pad(y, 2, mode="symmetric")
    k = np.array([[-1, 0, 1]] * 3, np.float64) / 3
    gx, gy = correlate(pad, k, mode="constant"), correlate(pad, k.T, mode="constant")
    smooth = np.hypot(gx, gy) < 5
    o = matlab_round(np.degrees(np.arctan2(gy, gx)))
    o = np.where(o > 90, o - 180, o)
    o = np.where(o < -90, o + 180, o) + 90
    o = np.where(smooth, 180 + 12, o)
    bins = matlab_round(o / 12).astype(np.int64)[1:-1, 1:-1]  # one pixel of padding left around the image
    h, w = y.shape
    seen = np.zeros((17, h, w), bool)
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            seen[bins[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w], rows, cols] = True
    count = seen.sum(0).astype(np.float64)
    count[smooth[2:-2, 2:-2]] = 1.0
    return correlate(count, gaussian_kernel(3, 1.0))


def edge_protection(y: np.ndarray) -> np.ndarray:
    height = max_gradient(y)[2:-2, 2:-2].max()  # as the reference: the border's gradients are padding
    threshold = min(0.8, 60 / height) if height > 0 else 0.8
    edges = ndimage.binary_dilation(canny(y, threshold), np.ones((5, 5), bool))
    return correlate(1 - edges.astype(np.float64), gaussian_kernel(5, 0.8))


def wu2017(image: np.ndarray) -> np.ndarray:
    """Wu et al. 2017: luminance adaptation plus visual masking by contrast and
    pattern complexity, combined by the NAMM sum."""
    y = luminance(image)
    lc = local_std(y, 5)
    contrast = 1.84 * lc**2.4 / (lc**2 + 26**2)
    pc = pattern_complexity(y)
    pattern = lc * 0.3 * pc**2.7 / (pc**2 + 1) * edge_protection(y)
    return namm(0.7 * lifted_threshold(y), np.maximum(contrast, pattern)).astype(np.float32)
