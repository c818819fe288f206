"""Canny edges as MATLAB documents ``edge(I, 'canny', T)``, for the models whose
reference code calls it (Yang 2005, Wu 2013, Wu 2017, Jiang 2022).

Steps, as in MATLAB (R2011a and later):
1. gradient by derivative-of-Gaussian filters, sigma = sqrt(2): a 13-tap Gaussian
   (x = -6..6) along one axis, the derivative of that Gaussian (its central
   differences, positive and negative parts each normalised to sum 1) along the
   other; borders replicated;
2. magnitude hypot(dx, dy), divided by its maximum;
3. non-maximum suppression along the gradient direction, interpolating between
   the two neighbours in each of four sectors, with ``>=``; border pixels never
   qualify;
4. hysteresis: high = T, low = 0.4 T; every 8-connected group of pixels above
   low that holds one above high is kept;
5. one pass of thinning (MATLAB's ``bwmorph(E, 'thin', 1)``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIGMA = np.sqrt(2.0)


def _kernels(sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(-np.ceil(4 * sigma), np.ceil(4 * sigma) + 1)
    gauss = np.exp(-(x**2) / (2 * sigma**2))
    gauss /= gauss.sum()
    deriv = np.gradient(gauss)
    pos, neg = deriv > 0, deriv < 0
    deriv[pos] /= deriv[pos].sum()
    deriv[neg] /= abs(deriv[neg].sum())
    return gauss, deriv


def gradients(image: np.ndarray, sigma: float = SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy): horizontal and vertical derivative-of-Gaussian responses."""
    gauss, deriv = _kernels(sigma)
    a = np.asarray(image, np.float64)
    dx = ndimage.convolve1d(ndimage.convolve1d(a, gauss, axis=0, mode="nearest"), deriv, axis=1, mode="nearest")
    dy = ndimage.convolve1d(ndimage.convolve1d(a, gauss, axis=1, mode="nearest"), deriv, axis=0, mode="nearest")
    return dx, dy


def _local_maxima(dx: np.ndarray, dy: np.ndarray, mag: np.ndarray) -> np.ndarray:
    """Pixels whose magnitude is >= both interpolated neighbours along the gradient."""
    h, w = mag.shape
    p = np.pad(mag, 1)

    def at(dr: int, dc: int) -> np.ndarray:  # mag shifted: value at (row + dr, col + dc)
        return p[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]

    ix, iy = dx, dy
    sectors = [
        ((iy <= 0) & (ix > -iy)) | ((iy >= 0) & (ix < -iy)),
        ((ix > 0) & (-iy >= ix)) | ((ix < 0) & (-iy <= ix)),
        ((ix <= 0) & (ix > iy)) | ((ix >= 0) & (ix < iy)),
        ((iy < 0) & (ix <= iy)) | ((iy > 0) & (ix >= iy)),
    ]
    with np.errstate(divide="ignore", invalid="ignore"):
        ryx, rxy = np.abs(iy / ix), np.abs(ix / iy)
    pairs = [
        (ryx, (at(0, 1), at(-1, 1)), (at(0, -1), at(1, -1))),
        (rxy, (at(-1, 0), at(-1, 1)), (at(1, 0), at(1, -1))),
        (rxy, (at(-1, 0), at(-1, -1)), (at(1, 0), at(1, 1))),
        (ryx, (at(0, -1), at(-1, -1)), (at(0, 1), at(1, 1))),
    ]
    keep = np.zeros(mag.shape, bool)
    for sector, (d, (a1, b1), (a2, b2)) in zip(sectors, pairs, strict=True):
        with np.errstate(invalid="ignore"):  # d is inf/nan only outside its sector
            m1 = a1 * (1 - d) + b1 * d
            m2 = a2 * (1 - d) + b2 * d
        keep |= sector & (mag >= m1) & (mag >= m2)
    keep[0, :] = keep[-1, :] = keep[:, 0] = keep[:, -1] = False
    return keep


def canny(image: np.ndarray, threshold: float, sigma: float = SIGMA) -> np.ndarray:
    """Boolean edge map of ``image`` (any scale: the magnitude is normalised) with
    MATLAB's meaning of ``edge(image, 'canny', threshold)``."""
    from skimage.morphology import thin

    dx, dy = gradients(image, sigma)
    mag = np.hypot(dx, dy)
    top = mag.max()
    if top > 0:
        mag = mag / top
    high, low = threshold, 0.4 * threshold
    weak = _local_maxima(dx, dy, mag) & (mag > low)
    strong = weak & (mag > high)
    if not strong.any():
        return np.zeros(mag.shape, bool)
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3), bool))
    kept = np.isin(labels, np.unique(labels[strong]))
    return np.asarray(thin(kept, max_num_iter=1), bool)
