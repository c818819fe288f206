"""Distortion visibility from a JND map: where, and how likely, a viewer sees the
difference between a pristine image and a distorted one, on a given display.

1. **Ratio.** The luminance error is divided by the map's thresholds by the rule
   of the map's family (:mod:`.thresholds`: pixel maps per pixel, DCT maps per
   coefficient, CPL residuals through a tolerance): r(x), in thresholds.
2. **Psychometric function.** A ratio r is seen with the Weibull probability
   (Quick 1974; Watson 1979) p(r) = 1 - exp(-(r / alpha)^beta), alpha the ratio
   seen with probability 1 - 1/e, beta the slope (3.5: Watson & Pelli 1983).
   ``probability`` is p(r(x)) per pixel: where the error is.
3. **Detection pooling.** A viewer looks at one place at a time. Around each
   place the detectors of a neighbourhood sized in degrees of visual angle (a
   Gaussian of sigma ``neighbourhood_deg`` = 1 degree: the central two degrees,
   the fovea) are pooled by probability summation with one independent
   detector per neighbourhood, which is the Minkowski mean of the ratios with the
   Weibull's exponent:

       R(x) = (sum_y w(y - x) r(y)^beta)^(1 / beta),  sum_y w = 1,

   so that an error at the threshold over the whole neighbourhood (JND-shaped
   noise at scale 1: the maps are calibrated so) gives 1 - 1/e. Outside the image
   the display shows no error: the neighbourhood extends over an undistorted
   surround. ``p_detect`` is p at a **robust maximum** of R over the image and its
   surround: the value exceeded over an area of ``peak_area_deg2`` (1 square degree),
   so that a single pixel decides nothing and an undistorted surround, however
   large, changes nothing. ``detection_ratio`` is that R (in thresholds; it never
   saturates, which makes it the quantity to rank by).
4. **Quality score.** ``mean_visibility`` = p of the Minkowski mean of r over the
   whole image (what ``p_detect`` was before neighbourhoods): it grows with the
   extent of the distortion as well as its strength. ``pooled_ratio`` is that mean
   ratio.

Everything is computed with the largest ratio factored out, so that no value
overflows whatever alpha and beta are; the probabilities come from the ratios in
the log domain.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError
from .thresholds import RULES, ratio
from .viewing import DEFAULT_VIEWING, ViewingConditions

#: Weibull slope (Watson & Pelli 1983, contrast detection).
DEFAULT_SLOPE = 3.5
#: Error-to-threshold ratio detected with probability 1 - 1/e.
DEFAULT_ALPHA = 1.0
#: The smallest threshold used as a divisor (grey levels; for DCT maps, coefficient
#: units): half an 8-bit step. A display cannot show less than one step, and without
#: a floor a few near-zero map values would decide the whole image.
JND_FLOOR = 0.5
#: The neighbourhood of probability summation: a Gaussian of this sigma (degrees).
NEIGHBOURHOOD_DEG = 1.0
#: The robust maximum: the value exceeded over this area (square degrees).
PEAK_AREA_DEG2 = 1.0
POOLING = "neighbourhood Minkowski (probability summation), robust maximum"


@dataclass(frozen=True)
class VisibilityParams:
    """The psychometric function's and the pooling's parameters, recorded beside every map."""

    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_SLOPE
    pooling: str = POOLING
    #: Thresholds below this (grey levels) count as this.
    jnd_floor: float = JND_FLOOR
    neighbourhood_deg: float = NEIGHBOURHOOD_DEG
    peak_area_deg2: float = PEAK_AREA_DEG2

    def check(self) -> None:
        for name, v in (
            ("alpha", self.alpha),
            ("beta (slope)", self.beta),
            ("jnd_floor", self.jnd_floor),
            ("neighbourhood_deg", self.neighbourhood_deg),
            ("peak_area_deg2", self.peak_area_deg2),
        ):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ResJNDError(f"visibility {name} must be a number above 0, got {v}")


def weibull(r: np.ndarray | float, alpha: float, beta: float) -> np.ndarray:
    """p = 1 - exp(-(r / alpha)^beta), computed in the log domain (never overflows)."""
    r = np.asarray(r, np.float64)
    with np.errstate(divide="ignore"):
        z = beta * (np.log(r) - math.log(alpha))
    return -np.expm1(-np.exp(np.minimum(z, 700.0)))


@dataclass(frozen=True)
class Visibility:
    """Where and how likely a distortion is seen."""

    #: H x W float32 in [0, 1]: the probability that each pixel's error is seen.
    probability: np.ndarray
    #: The probability that a viewer sees the difference (0: invisible).
    p_detect: float
    #: The neighbourhood ratio behind p_detect (thresholds; never saturates).
    detection_ratio: float
    #: The quality score: p of the image-wide Minkowski mean ratio.
    mean_visibility: float
    #: The image-wide Minkowski mean ratio (thresholds).
    pooled_ratio: float
    params: VisibilityParams
    viewing: ViewingConditions = DEFAULT_VIEWING
    domain: str = "pixel"
    #: Where the neighbourhood behind p_detect is centred (x, y; pixels, may lie outside).
    peak_xy: tuple[int, int] = (0, 0)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict:
        """The numbers every output records; finite by construction (strict JSON)."""
        return {
            "p_detect": self.p_detect,
            "detection_ratio": self.detection_ratio,
            "mean_visibility": self.mean_visibility,
            "pooled_ratio": self.pooled_ratio,
            "max_pixel_probability": float(self.probability.max()) if self.probability.size else 0.0,
            "peak_xy": list(self.peak_xy),
            "domain": self.domain,
            "threshold_rule": RULES[self.domain],
            "params": asdict(self.params),
            "viewing": self.viewing.as_dict(),
            **self.extra,
        }


def _minkowski_mean(r: np.ndarray, beta: float) -> float:
    top = float(r.max()) if r.size else 0.0
    if top == 0:
        return 0.0
    return top * float(np.mean((r / top) ** beta)) ** (1 / beta)


def neighbourhood_ratio(r: np.ndarray, beta: float, sigma_px: float) -> tuple[np.ndarray, int, int]:
    """R over the image and an undistorted surround of 4 sigma on every side, on a grid
    ``step`` pixels apart (block means of r^beta, then a Gaussian of sigma / step: the
    extra blur of the blocks adds under 1 % to the variance), with the margin in steps.
    Returns (R, margin, step)."""
    step = max(1, int(sigma_px // 4))
    margin = math.ceil(4 * sigma_px / step)
    h, w = -(-r.shape[0] // step), -(-r.shape[1] // step)
    canvas = np.zeros((h + 2 * margin, w + 2 * margin), np.float64)
    top = float(r.max()) if r.size else 0.0
    if top == 0:
        return canvas, margin, step
    padded = np.zeros((h * step, w * step), np.float64)
    padded[: r.shape[0], : r.shape[1]] = (r / top) ** beta
    canvas[margin : margin + h, margin : margin + w] = padded.reshape(h, step, w, step).mean(axis=(1, 3))
    pooled = ndimage.gaussian_filter(canvas, sigma_px / step, mode="constant", cval=0.0, truncate=4.0)
    return top * np.clip(pooled, 0, None) ** (1 / beta), margin, step


def robust_peak(local: np.ndarray, count: float) -> tuple[float, tuple[int, int]]:
    """The value exceeded by ``count`` cells of ``local``, and where (row, column) it is."""
    flat = local.ravel()
    k = int(min(max(1, round(count)), flat.size))
    at = int(np.argpartition(flat, flat.size - k)[flat.size - k])
    return float(flat[at]), (at // local.shape[1], at % local.shape[1])


def pool(
    r: np.ndarray,
    params: VisibilityParams,
    viewing: ViewingConditions = DEFAULT_VIEWING,
    domain: str = "pixel",
) -> Visibility:
    """A ratio map -> :class:`Visibility` (steps 2-4 of the module)."""
    params.check()
    a, b = params.alpha, params.beta
    local, margin, step = neighbourhood_ratio(r, b, viewing.pixels(params.neighbourhood_deg))
    peak, (row, col) = robust_peak(local, params.peak_area_deg2 * viewing.ppd**2 / step**2)
    mean = _minkowski_mean(r, b)
    return Visibility(
        probability=weibull(r, a, b).astype(np.float32),
        p_detect=float(weibull(peak, a, b)),
        detection_ratio=peak,
        mean_visibility=float(weibull(mean, a, b)),
        pooled_ratio=mean,
        params=params,
        viewing=viewing,
        domain=domain,
        peak_xy=((col - margin) * step + step // 2, (row - margin) * step + step // 2),
    )


def visibility(
    pristine: np.ndarray,
    distorted: np.ndarray,
    jnd: np.ndarray,
    params: VisibilityParams | None = None,
    *,
    domain: str | None = None,
    model: str | None = None,
    viewing: ViewingConditions | None = None,
) -> Visibility:
    """Where and how likely the distortion is seen, given the pristine image's JND map.

    ``model`` (a name of :mod:`napari_resjnd.core.maps`) says which family the map is
    of; or give its ``domain`` ("pixel", "dct", "cpl", "control"; default "pixel").
    ``viewing``: the display and distance (default: :data:`.viewing.DEFAULT_VIEWING`)."""
    params = params or VisibilityParams()
    params.check()
    viewing = viewing or DEFAULT_VIEWING
    scale = None
    if model is not None:
        from ..maps import source

        src = source(model)
        domain, scale = domain or src.domain, src.viewing_scale
    domain = domain or "pixel"
    r = ratio(
        pristine,
        distorted,
        jnd,
        domain=domain,
        viewing=viewing,
        floor=params.jnd_floor,
        beta=params.beta,
        viewing_scale=scale,
    )
    return pool(r, params, viewing, domain)
