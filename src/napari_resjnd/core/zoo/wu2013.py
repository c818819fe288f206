"""Wu et al. 2013 (TMM), "Just noticeable difference estimation for images with
free-energy principle", as in the authors' code (OpenJND's ``Wu et al (TMM)/Matlab``:
``main.m`` and ``code/``).

- The brain's prediction of the image is an autoregressive (non-local) estimate:
  every pixel becomes the weighted mean of the pixels in its 21 x 21
  neighbourhood, weighted by exp(-d / s^2), d the mean squared difference of
  their 7 x 7 patches; s is the luminance-adaptation threshold (at least 8),
  lowered where the local standard deviation exceeds it (s^2 -> s^3 / std). The
  pixel itself takes the largest of its neighbours' weights.
- The orderly part (the prediction) masks by luminance adaptation (Chou & Li's
  threshold at a background lifted as bg <= 127 -> round(32 + bg x 95 / 127)) and
  by contrast (a log-compressed edge height through Chou & Li's texture formula),
  combined by the NAMM sum.
- The disorderly part, |image - prediction| (the free energy), is itself the
  disorder threshold; in smooth regions (std < 10) no more than its 7 x 7 Gaussian
  mean; it is lowered at edges (1 - 0.8 x Canny edges at 0.7, dilated by a disk of
  radius 2, smoothed).
- JND = NAMM(orderly, disorderly).

Borders are reflected where the reference pads with zeros, and the reference's
zeroing of the outer 2 to 3 rows and columns is left out.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage

from ..images import luminance
from ._common import correlate, gaussian_kernel, local_std, matlab_round
from .canny import canny
from .pixel import background, lifted_threshold, max_gradient, namm

#: Search radius and patch radius of the prediction.
SEARCH, PATCH = 10, 3


def predict(y: np.ndarray) -> np.ndarray:
    """The autoregressive prediction of ``y`` (uint8-rounded, as the reference)."""
    s = np.maximum(lifted_threshold(y), 8.0)
    std = local_std(y, 2 * PATCH + 1)
    sigma2 = np.where(std > s, s**3 / np.where(std > s, std, 1.0), s**2)
    total, weights, best = _weigh_neighbours(y, sigma2)
    estimate = (total + best * y) / (weights + best)
    return np.clip(matlab_round(estimate), 0, 255)


def _weigh_neighbours(y: np.ndarray, sigma2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of weighted neighbours, sum of weights and the largest weight per pixel.

    440 patch comparisons per pixel (a 21 x 21 search of 7 x 7 patches), the
    model's cost: the search rows are shared out among threads (numpy and scipy
    release the GIL), 1.6x faster on 2 cores; partial sums add in a fixed order."""
    from concurrent.futures import ThreadPoolExecutor

    h, w = y.shape
    big = np.pad(y, SEARCH + PATCH, mode="symmetric")
    hp, wp = h + 2 * PATCH, w + 2 * PATCH
    centre = big[SEARCH : SEARCH + hp, SEARCH : SEARCH + wp]
    box = 2 * PATCH + 1

    def rows(us: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        total, weights, best = np.zeros((h, w)), np.zeros((h, w)), np.zeros((h, w))
        for u in us:
            for v in range(-SEARCH, SEARCH + 1):
                if u == 0 and v == 0:
                    continue
                moved = big[SEARCH + u : SEARCH + u + hp, SEARCH + v : SEARCH + v + wp]
                d = ndimage.uniform_filter((centre - moved) ** 2, box, mode="constant")[PATCH:-PATCH, PATCH:-PATCH]
                sim = np.exp(-d / sigma2)
                total += moved[PATCH:-PATCH, PATCH:-PATCH] * sim
                weights += sim
                np.maximum(best, sim, out=best)
        return total, weights, best

    offsets = list(range(-SEARCH, SEARCH + 1))
    n = max(1, min(len(offsets), os.cpu_count() or 1, 8))
    with ThreadPoolExecutor(n, thread_name_prefix="wu2013") as pool:
        parts = list(pool.map(rows, [offsets[k::n] for k in range(n)]))
    total = np.sum([p[0] for p in parts], axis=0)
    weights = np.sum([p[1] for p in parts], axis=0)
    best = np.max([p[2] for p in parts], axis=0)
    return total, weights, best


def contrast_masking(pred: np.ndarray) -> np.ndarray:
    height = 80 * np.log10(1 + max_gradient(pred) / 80) / np.log10(4)
    bg = np.floor(background(pred))
    return np.abs(height * (0.0001 * bg + 0.115) + (0.5 - 0.01 * bg))


def disorder(y: np.ndarray, free_energy: np.ndarray) -> np.ndarray:
    smooth = local_std(y, 2 * PATCH + 1) < 10
    mean = correlate(free_energy, gaussian_kernel(7, 7 / 3))
    dis = np.where(smooth, np.minimum(mean, free_energy), free_energy)
    x = np.arange(-2, 3)
    disk = x[:, None] ** 2 + x[None, :] ** 2 <= 4
    edges = ndimage.binary_dilation(canny(y, 0.7), disk)
    return dis * correlate(1 - 0.8 * edges.astype(np.float64), gaussian_kernel(5, 0.8))


def wu2013(image: np.ndarray) -> np.ndarray:
    """Wu et al. 2013: NAMM of the orderly part's masking (luminance, contrast) and
    the disorderly part's uncertainty (the free energy)."""
    y = luminance(image)
    pred = predict(y)
    orderly = namm(lifted_threshold(pred), contrast_masking(pred))
    return namm(orderly, disorder(y, np.abs(y - pred))).astype(np.float32)
