"""The error-to-threshold ratio of each map family (the registry's ``domain``): how
many thresholds the luminance error e = Y_distorted - Y_pristine (BT.601, grey
levels) is worth, where.

- **pixel** maps (Chou & Li, NAMM, Liu, Wu) hold a luminance threshold per pixel:
  r(x) = |e(x)| / max(J(x), floor).
- **dct** maps (Zhang 2005, Jia 2006) hold coefficient (i, j)'s threshold at pixel
  (i, j) of its 8 x 8 block, in the units of the orthonormal block DCT their
  models use. The error is taken to the same domain, as in Watson's DCTune
  (Watson 1993): the block DCT of e, divided coefficient by coefficient,
  r_b(k) = |E_b(k)| / max(T_b(k), floor); a block's ratio is the Minkowski mean
  over its 64 coefficients with the psychometric slope beta,
  r_b = (mean_k r_b(k)^beta)^(1 / beta), laid out over the block's pixels, and the
  blocks are then pooled like pixels (:mod:`.detection`). DCTune sums over
  coefficients; the mean is used here because these maps are calibrated by their
  authors (the 0.3 and 0.4 factors) so that noise at the threshold on every
  coefficient is just noticeable: a sum would put their own calibration point at
  1 - exp(-64). Their base thresholds come from a contrast sensitivity function at
  the authors' pixel size; they are moved to the viewing condition's pixels per
  degree (:func:`napari_resjnd.core.maps.csf_rescale`). Partial blocks at the
  right and bottom edges are mirrored to 8 x 8, as the models pad them.
- **cpl** maps (ResJND, KLT-JND) hold |CPL - I|: one change that stays unseen, a
  lower bound of the tolerance, near 0 in flat regions where the real threshold
  is the luminance-adaptation level. They are turned into a tolerance by the
  nonlinear additivity model for masking (NAMM, Yang et al. 2005), the rule the
  classic pixel models use to join their two terms:

      T = T_la + T_m - 0.3 min(T_la, T_m)

  with T_m the residual's local root mean square (5 x 5, the window of Chou & Li's
  operators: masking follows the local energy of the change the CPL image allows,
  not its value at one pixel) and T_la the luminance-adaptation threshold of the
  local background (Chou & Li's 5 x 5 weighted mean) on the viewing condition's
  display: Ferwerda et al.'s (1996) photopic threshold-versus-intensity function,
  log10 dL = (0.249 log10 L + 0.65)^2.7 - 0.72 (log10 dL = log10 L - 1.255 above
  79 cd/m^2), at the background's luminance L (sRGB, the display's peak, black and
  reflected light), divided by the display's luminance step per grey level. On the
  default display it gives 3.7 grey levels at mid-grey and 6.4 at white, near
  Chou & Li's 3 and 6, and it follows the peak luminance: a dimmer display hides
  more grey levels.
  The rule was chosen by measurement against ColorVideoVDP on the four scikit-image
  photos among a handful of principled candidates (docs: Visibility), with no
  parameter fitted: the residual enters unscaled.
- **control** (``uniform``, 1 everywhere): as a pixel map.

References: Watson, A. B. (1993), DCTune: a technique for visual optimization of
DCT quantization matrices, SID Digest 24, 946-949. Chou, C.-H., & Li, Y.-C. (1995),
IEEE TCSVT 5(6). Yang, X. et al. (2005), IEEE TCSVT 15(6). Ferwerda, J. A.,
Pattanaik, S. N., Shirley, P., & Greenberg, D. P. (1996), A model of visual
adaptation for realistic image synthesis, SIGGRAPH 96, 249-258.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError
from ..images import luminance
from ..zoo._common import block_dct, from_blocks, pad8, to_blocks
from ..zoo.pixel import background, namm
from .viewing import ViewingConditions

log = logging.getLogger(__name__)

#: Every domain the registry names, and what the visibility model does with it.
RULES = {
    "pixel": "|e| / max(J, floor) per pixel",
    "control": "|e| / max(J, floor) per pixel",
    "dct": "block DCT of e / J per coefficient; Minkowski mean over the block's coefficients (DCTune)",
    "cpl": "|e| / NAMM(Ferwerda luminance adaptation of the background, local RMS of |CPL - I|)",
}
#: The window (pixels) of the residual's local RMS: Chou & Li's operators' 5 x 5.
MASKING_WINDOW = 5


def luminance_error(pristine: np.ndarray, distorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Y of the pristine image, Y_distorted - Y_pristine), grey levels; sizes checked."""
    yp, yd = luminance(pristine), luminance(distorted)
    if yp.shape != yd.shape:
        raise ResJNDError(
            f"the distorted image is {yd.shape[1]} x {yd.shape[0]}, the pristine {yp.shape[1]} x {yp.shape[0]}"
        )
    return yp, yd - yp


def checked_map(jnd: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    j = np.asarray(jnd, np.float64)
    if j.shape != shape:
        raise ResJNDError(f"the JND map is {j.shape}, the images {shape}")
    if not np.isfinite(j).all() or (j < 0).any():
        raise ResJNDError("the JND map must be finite and not negative")
    return j


def luminance_floor(y: np.ndarray, viewing: ViewingConditions) -> np.ndarray:
    """Ferwerda et al.'s photopic luminance-adaptation threshold at each pixel's
    background on the viewing condition's display, in grey levels."""
    bg = np.clip(background(np.asarray(y, np.float64)), 0, 255)
    log_l = np.log10(viewing.luminance(bg))
    log_dl = np.where(log_l <= -2.6, -0.72, np.where(log_l >= 1.9, log_l - 1.255, (0.249 * log_l + 0.65) ** 2.7 - 0.72))
    return np.asarray(10.0**log_dl / viewing.luminance_slope(bg))


def local_rms(residual: np.ndarray) -> np.ndarray:
    r = np.asarray(residual, np.float64)
    return np.sqrt(np.clip(ndimage.uniform_filter(r * r, MASKING_WINDOW, mode="reflect"), 0, None))


#: The candidate rules for CPL residuals that were measured (docs: Visibility); "namm" is the model's.
CPL_RULES: dict[str, Callable[[np.ndarray, np.ndarray, ViewingConditions], np.ndarray]] = {
    "namm": lambda y, res, v: np.asarray(namm(luminance_floor(y, v), local_rms(res))),
    "residual": lambda y, res, v: np.asarray(res, np.float64),
    "floor": lambda y, res, v: luminance_floor(y, v),
    "max": lambda y, res, v: np.maximum(luminance_floor(y, v), np.asarray(res, np.float64)),
    "max-rms": lambda y, res, v: np.maximum(luminance_floor(y, v), local_rms(res)),
}


def cpl_tolerance(y: np.ndarray, residual: np.ndarray, viewing: ViewingConditions, rule: str = "namm") -> np.ndarray:
    """A CPL residual map -> a tolerance in grey levels (the module's NAMM rule, or
    one of the other :data:`CPL_RULES` it was measured against)."""
    return CPL_RULES[rule](np.asarray(y, np.float64), residual, viewing)


def pixel_ratio(error: np.ndarray, threshold: np.ndarray, floor: float) -> np.ndarray:
    floored = int(np.count_nonzero(threshold < floor))
    if floored:
        log.info(
            "threshold below %g grey levels at %d of %d pixels: counted as %g", floor, floored, threshold.size, floor
        )
    return np.abs(error) / np.maximum(threshold, floor)


def dct_ratio(
    error: np.ndarray, thresholds: np.ndarray, floor: float, beta: float, scale: np.ndarray | None = None
) -> np.ndarray:
    """Each 8 x 8 block's Minkowski-mean coefficient ratio, laid out over its pixels."""
    h, w = error.shape
    e = block_dct(pad8(error))
    t = to_blocks(pad8(thresholds))
    if scale is not None:
        t = t * scale
    r = np.abs(e) / np.maximum(t, floor)  # (H/8, W/8, 8, 8)
    top = r.max(axis=(-2, -1), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(top > 0, r / top, 0.0)
    block = top[..., 0, 0] * np.mean(rel**beta, axis=(-2, -1)) ** (1 / beta)
    full = from_blocks(np.broadcast_to(block[..., None, None], r.shape))
    return np.ascontiguousarray(full[:h, :w])


def ratio(
    pristine: np.ndarray,
    distorted: np.ndarray,
    jnd: np.ndarray,
    *,
    domain: str,
    viewing: ViewingConditions,
    floor: float,
    beta: float,
    viewing_scale: Callable[[float], np.ndarray] | None = None,
    cpl_rule: str = "namm",
) -> np.ndarray:
    """The error-to-threshold ratio per pixel (H x W float64) by the rule of ``domain``."""
    if domain not in RULES:
        raise ResJNDError(f"unknown map domain {domain!r}; known: {', '.join(RULES)}")
    y, e = luminance_error(pristine, distorted)
    j = checked_map(jnd, y.shape)
    if domain == "dct":
        scale = viewing_scale(viewing.ppd) if viewing_scale is not None else None
        return dct_ratio(e, j, floor, beta, scale)
    if domain == "cpl":
        j = cpl_tolerance(y, j, viewing, cpl_rule)
    return pixel_ratio(e, j, floor)
