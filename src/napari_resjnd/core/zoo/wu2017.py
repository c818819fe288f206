"""Wu et al. 2017 (TIP), pattern-complexity JND: a reading of the paper, to be
replaced by the authors' reference code's model (see issue #12: r = 0.33 with it).

- gradients are Sobel derivatives divided by 4; a pixel counts towards pattern
  complexity when its magnitude is >= 5;
- orientations modulo 180 degrees in 12-degree bins; the complexity C of a pixel
  is the number of distinct bins among the counted pixels of its 3 x 3 neighbourhood;
- pattern masking LC x 0.8 C^2.7 / (C^2 + 0.1^2), times Yang's edge protection;
- VM = max(LC, pattern masking); JND = LA + VM - 0.3 min(LA, VM), LA = 0.7 T_l.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._common import luminance
from .pixel import background, edge_protection, luminance_adaptation


def pattern_complexity(y: np.ndarray) -> np.ndarray:
    """Distinct 12-degree orientation bins among textured pixels of each 3 x 3 neighbourhood."""
    gx = ndimage.sobel(y, axis=1, mode="reflect") / 4
    gy = ndimage.sobel(y, axis=0, mode="reflect") / 4
    mag = np.hypot(gx, gy)
    theta = np.degrees(np.arctan2(gy, gx)) % 180
    bins = np.minimum((theta // 12).astype(int), 14)
    count = np.zeros(y.shape, int)
    for b in range(15):
        present = (bins == b) & (mag >= 5)
        count += ndimage.maximum_filter(present.astype(np.uint8), size=3, mode="reflect") > 0
    return count


def wu2017(image: np.ndarray) -> np.ndarray:
    y = luminance(image)
    la = 0.7 * luminance_adaptation(background(y))
    mean = ndimage.uniform_filter(y, 5, mode="reflect")
    var = ndimage.uniform_filter(y * y, 5, mode="reflect") - mean**2
    lstd = np.sqrt(np.clip(var, 0, None))
    lc = 1.84 * lstd**2.4 / (lstd**2 + 26**2)
    c = pattern_complexity(y).astype(float)
    pm = lc * 0.8 * c**2.7 / (c**2 + 0.1**2) * edge_protection(y)
    vm = np.maximum(lc, pm)
    return (la + vm - 0.3 * np.minimum(la, vm)).astype(np.float32)
