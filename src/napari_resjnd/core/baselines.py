"""Classic pixel-domain JND models, from their published formulas, weight-free.

All work on the luminance Y = 0.299 R + 0.587 G + 0.114 B in [0, 255] and return
an H x W float32 map in grey levels. Borders are handled by reflection.

Reading of Wu et al. 2017 (TIP, "Enhanced just noticeable difference model for
images with pattern complexity") where the summary leaves room:
- gradients are Sobel derivatives divided by 4 (grey levels per pixel); a pixel
  counts towards pattern complexity when its magnitude is >= 5;
- orientations are taken modulo 180 degrees in 12-degree bins (15 bins); the
  pattern complexity C of a pixel is the number of distinct bins among the
  counted pixels of its 3 x 3 neighbourhood (0 in flat regions);
- pattern masking is LC x 0.8 C^2.7 / (C^2 + 0.1^2), i.e. the paper's
  complexity gain applied to the luminance-contrast masking, then multiplied by
  the same edge-protection weight as NAMM;
- visual masking VM = max(LC, pattern masking); JND = LA + VM - 0.3 min(LA, VM)
  with LA = 0.7 T_l.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .inference import Prediction

import numpy as np
from scipy import ndimage

from .images import layout_of, plane_rgb, rgb255, to_unit_float

B = np.array([[1, 1, 1, 1, 1], [1, 2, 2, 2, 1], [1, 2, 0, 2, 1], [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]], float)
G = [
    np.array([[0, 0, 0, 0, 0], [1, 3, 8, 3, 1], [0, 0, 0, 0, 0], [-1, -3, -8, -3, -1], [0, 0, 0, 0, 0]], float),
    np.array([[0, 0, 1, 0, 0], [0, 8, 3, 0, 0], [1, 3, 0, -3, -1], [0, 0, -3, -8, 0], [0, 0, -1, 0, 0]], float),
    np.array([[0, 0, 1, 0, 0], [0, 0, 3, 8, 0], [-1, -3, 0, 3, 1], [0, -8, -3, 0, 0], [0, 0, -1, 0, 0]], float),
    np.array([[0, 1, 0, -1, 0], [0, 3, 0, -3, 0], [0, 8, 0, -8, 0], [0, 3, 0, -3, 0], [0, 1, 0, -1, 0]], float),
]
MODELS = ("chou", "namm", "wu2017")
TITLES = {"chou": "Chou & Li 1995", "namm": "Yang et al. 2005 (NAMM)", "wu2017": "Wu et al. 2017"}


def to_y(rgb255: np.ndarray) -> np.ndarray:
    """Y in [0, 255] (BT.601 weights) from H x W x 3 RGB in [0, 255]."""
    return np.asarray(rgb255, np.float64) @ np.array([0.299, 0.587, 0.114])


def luminance(image: np.ndarray) -> np.ndarray:
    """Y in [0, 255] from any single image ``predict`` accepts."""
    return to_y(rgb255(image))


def background(y: np.ndarray) -> np.ndarray:
    return ndimage.correlate(y, B, mode="reflect") / 32


def max_gradient(y: np.ndarray) -> np.ndarray:
    return np.max([np.abs(ndimage.correlate(y, g, mode="reflect")) for g in G], axis=0) / 16


def luminance_adaptation(bg: np.ndarray) -> np.ndarray:
    """T_l: 17 (1 - sqrt(bg / 127)) + 3 up to 127, then 3/128 (bg - 127) + 3."""
    bg = np.asarray(bg, float)
    return np.where(bg <= 127, 17 * (1 - np.sqrt(np.clip(bg, 0, None) / 127)) + 3, 3 / 128 * (bg - 127) + 3)


def chou_li(image: np.ndarray) -> np.ndarray:
    """Chou & Li 1995: max(spatial masking, luminance adaptation)."""
    y = luminance(image)
    bg, mg = background(y), max_gradient(y)
    f = mg * (0.0001 * bg + 0.115) + (0.5 - 0.01 * bg)
    return np.maximum(f, luminance_adaptation(bg)).astype(np.float32)


def edge_protection(y: np.ndarray) -> np.ndarray:
    """W: Gaussian-smoothed (7 x 7, sigma 0.8) 1 - 0.95 E, E = Canny edges dilated by a disk of radius 6."""
    from skimage.feature import canny
    from skimage.morphology import dilation, disk

    e = dilation(canny(y / 255.0), disk(6)).astype(float)
    # truncate=3.75 with sigma 0.8 gives a 7 x 7 kernel (radius 3)
    return ndimage.gaussian_filter(1 - 0.95 * e, sigma=0.8, truncate=3 / 0.8, mode="reflect")


def namm(image: np.ndarray) -> np.ndarray:
    """Yang et al. 2005, the nonlinear additivity model for masking (NAMM)."""
    y = luminance(image)
    bg, mg = background(y), max_gradient(y)
    tl = luminance_adaptation(bg)
    tt = mg * edge_protection(y) * (0.0001 * bg + 0.115) + (0.5 - 0.01 * bg)
    return (tl + tt - 0.3 * np.minimum(tl, tt)).astype(np.float32)


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
    """Wu et al. 2017: luminance adaptation plus pattern-complexity masking (see module notes)."""
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


def classic_jnd(name: str, image: np.ndarray) -> np.ndarray:
    """One of :data:`MODELS` by name."""
    funcs = {"chou": chou_li, "namm": namm, "wu2017": wu2017}
    if name not in funcs:
        raise ValueError(f"unknown classic JND model {name!r}; known: {', '.join(MODELS)}")
    return funcs[name](image)


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
        "weights": f"classic:{name}",
        "model": TITLES[name],
        "weights_sha256": None,
        "device": "cpu",
        "precision": "fp64",
        "tile": None,
        "seconds": round(time.perf_counter() - t0, 3),
        "input_shape": list(a.shape),
        "jnd_units": "grey levels (0-255), luminance Y",
    }
    return Prediction(cpl=None, residual=None, jnd=jnd, metadata=meta)
