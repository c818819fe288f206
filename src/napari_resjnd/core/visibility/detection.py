"""Distortion visibility from a JND map: where, and how likely, a viewer sees the
difference between a pristine image and a distorted one.

Per pixel, the luminance error e(x) = |Y_d(x) - Y_p(x)| (BT.601, grey levels) is
divided by the JND: r(x) = e(x) / max(JND(x), 0.5). The probability of detecting that pixel's
error is a Weibull psychometric function of the ratio (Quick 1974; Watson 1979):

    p(x) = 1 - exp(-(r(x) / alpha) ** beta)

with ``alpha`` the ratio seen with probability 1 - 1/e (0.632) and ``beta`` the
slope (3.5, the value Watson & Pelli 1983 use for contrast detection).

The image-level ``p_detect`` pools the ratios by Minkowski summation with the
Weibull's own exponent, normalised by the pixel count, then applies the same
Weibull:

    p_detect = 1 - exp(-mean_x (r(x) / alpha) ** beta)

so that JND-shaped noise at scale 1 everywhere (r = 1: the map's own "just
noticeable" noise) gives 1 - 1/e whatever the image size. Unnormalised probability
summation over pixels, 1 - prod(1 - p(x)), would call any faint but extended
error certain in a large image. ``p_detect`` is the probability that the difference
is seen: 0 means invisible; it is not a 2AFC proportion correct.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ResJNDError
from ..images import luminance

log = logging.getLogger(__name__)

#: Weibull slope (Watson & Pelli 1983, contrast detection).
DEFAULT_SLOPE = 3.5
#: Error-to-JND ratio detected with probability 1 - 1/e.
DEFAULT_ALPHA = 1.0
#: The smallest JND used as a divisor (grey levels): half an 8-bit step. A display
#: cannot show less than one step, and without a floor a few near-zero map values
#: (KLT-JND's zeros, ResJND's smallest residuals) would decide the whole image.
JND_FLOOR = 0.5


@dataclass(frozen=True)
class VisibilityParams:
    """The psychometric function's parameters, recorded beside every map."""

    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_SLOPE
    pooling: str = "minkowski-mean"
    #: JND values below this (grey levels) count as this.
    jnd_floor: float = JND_FLOOR

    def check(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ResJNDError(f"visibility alpha must be a number above 0, got {self.alpha}")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise ResJNDError(f"visibility beta (slope) must be a number above 0, got {self.beta}")
        if not (math.isfinite(self.jnd_floor) and self.jnd_floor > 0):
            raise ResJNDError(f"visibility jnd_floor must be a number above 0, got {self.jnd_floor}")


@dataclass(frozen=True)
class Visibility:
    """A per-pixel detection probability map and its pooled ``p_detect``."""

    #: H x W float32 in [0, 1]: the probability that each pixel's error is seen.
    probability: np.ndarray
    #: The image-level probability that the difference is seen (0: invisible).
    p_detect: float
    #: The pooled error-to-JND ratio (Minkowski mean with exponent beta).
    pooled_ratio: float
    params: VisibilityParams

    def summary(self) -> dict:
        return {
            "p_detect": self.p_detect,
            "pooled_ratio": self.pooled_ratio,
            "max_pixel_probability": float(self.probability.max()),
            "params": asdict(self.params),
        }


def error_ratio(pristine: np.ndarray, distorted: np.ndarray, jnd: np.ndarray, floor: float = JND_FLOOR) -> np.ndarray:
    """|Y_d - Y_p| / max(JND, floor) per pixel (H x W float64); ResJNDError when the sizes differ."""
    yp, yd = luminance(pristine), luminance(distorted)
    if yp.shape != yd.shape:
        raise ResJNDError(
            f"the distorted image is {yd.shape[1]} x {yd.shape[0]}, the pristine {yp.shape[1]} x {yp.shape[0]}"
        )
    j = np.asarray(jnd, np.float64)
    if j.shape != yp.shape:
        raise ResJNDError(f"the JND map is {j.shape}, the images {yp.shape}")
    if not np.isfinite(j).all() or (j < 0).any():
        raise ResJNDError("the JND map must be finite and not negative")
    floored = int(np.count_nonzero(j < floor))
    if floored:
        log.info("JND below %g grey levels at %d of %d pixels: counted as %g", floor, floored, j.size, floor)
    return np.abs(yd - yp) / np.maximum(j, floor)


def visibility(
    pristine: np.ndarray, distorted: np.ndarray, jnd: np.ndarray, params: VisibilityParams | None = None
) -> Visibility:
    """Where and how likely the distortion is seen, given the pristine image's JND map."""
    params = params or VisibilityParams()
    params.check()
    scaled = (error_ratio(pristine, distorted, jnd, params.jnd_floor) / params.alpha) ** params.beta
    probability = -np.expm1(-scaled)
    mean = float(scaled.mean())
    return Visibility(
        probability=probability.astype(np.float32),
        p_detect=float(-math.expm1(-mean)),
        pooled_ratio=float(params.alpha * mean ** (1 / params.beta)),
        params=params,
    )
