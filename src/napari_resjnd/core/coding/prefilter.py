"""JND-guided pre-processing: what an encoder is given instead of the original.

Two ways, one per kind of model:

- ``cpl``: ResJND predicts the critical perceptual lossless (CPL) image, the
  picture that looks the same as the input but carries less visual redundancy;
  it is encoded in place of the original (what the CPL image is for).
- ``smooth``: any JND map bounds a low-pass filter. Each pixel moves towards its
  filtered value by at most lambda x JND:

      x' = x + clip(S(x) - x, -lambda * JND, +lambda * JND)

  with S a named low-pass filter (:data:`FILTERS`), the same JND for R, G and B
  (the maps are luminance maps), and the step rounded towards zero so that the
  8-bit result never leaves the bound. This is the clipped step towards a local
  mean of the JND-adaptive pre-processor of Yang et al. (IEEE TCSVT 15(6), 2005,
  "Motion-compensated residue preprocessing in video coding based on
  just-noticeable-distortion profile"), applied to pixels rather than residues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError

log = logging.getLogger(__name__)

#: The default low-pass filter and its width.
DEFAULT_FILTER = "gaussian"
DEFAULT_SIGMA = 1.5
DEFAULT_LAMBDA = 1.0


def _gaussian(plane: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(plane, sigma, mode="reflect", truncate=3.0)


def _mean(plane: np.ndarray, sigma: float) -> np.ndarray:
    """Box mean over a (2 round(sigma) + 1)-pixel square."""
    return ndimage.uniform_filter(plane, 2 * max(1, round(sigma)) + 1, mode="reflect")


def _median(plane: np.ndarray, sigma: float) -> np.ndarray:
    """Median over a (2 round(sigma) + 1)-pixel square."""
    return ndimage.median_filter(plane, 2 * max(1, round(sigma)) + 1, mode="reflect")


#: Low-pass filters by name: (plane in grey levels, width) -> filtered plane.
FILTERS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "gaussian": _gaussian,
    "mean": _mean,
    "median": _median,
}


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """One 2-D image as H x W x 3 uint8 (grey repeated, alpha dropped), as codecs take it."""
    from ..images import rgb255

    return np.clip(np.rint(rgb255(image)), 0, 255).astype(np.uint8)


def jnd_smooth(
    image: np.ndarray,
    jnd: np.ndarray,
    *,
    lam: float = DEFAULT_LAMBDA,
    filter_name: str = DEFAULT_FILTER,
    sigma: float = DEFAULT_SIGMA,
) -> np.ndarray:
    """x + clip(S(x) - x, -lam JND, +lam JND), rounded towards x: H x W x 3 uint8 whose
    every sample lies within ``lam * jnd`` of the original's."""
    if filter_name not in FILTERS:
        raise ResJNDError(f"unknown filter {filter_name!r}; known: {', '.join(FILTERS)}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ResJNDError(f"lambda {lam}: must be a finite number, 0 or more")
    x = as_rgb8(image).astype(np.float64)
    bound = lam * np.asarray(jnd, np.float64)
    if bound.shape != x.shape[:2]:
        raise ResJNDError(f"the JND map is {bound.shape}, the image {x.shape[:2]}")
    if not np.isfinite(bound).all() or (bound < 0).any():
        raise ResJNDError("the JND map must be finite and not negative")
    filtered = np.stack([FILTERS[filter_name](x[..., c], sigma) for c in range(3)], axis=-1)
    step = np.clip(filtered - x, -bound[..., None], bound[..., None])
    return np.clip(x + np.trunc(step), 0, 255).astype(np.uint8)


#: ResJND's map driving the smoothing instead of its CPL image.
RESJND_SMOOTH = "resjnd-smooth"


def guided_names(text: str) -> list[str]:
    """Comma-separated JND models for coding: ``resjnd`` (its CPL image),
    ``resjnd-smooth`` (its map bounding the smoothing), the classic models (their
    maps bounding the smoothing); ``all``: ResJND and every classic model."""
    from ..maps import MODELS, is_classic, resolve

    names: list[str] = []
    for n in (t.strip() for t in text.split(",")):
        for m in ["resjnd", *MODELS] if n == "all" else [n]:
            m = resolve(m).name if is_classic(m) else m
            if m and m not in names:
                names.append(m)
    unknown = [n for n in names if n not in ("resjnd", RESJND_SMOOTH) and not is_classic(n)]
    if unknown or not names:
        known = ", ".join(["all", "resjnd", RESJND_SMOOTH, *MODELS])
        raise ResJNDError(f"unknown JND model {', '.join(unknown) or '(none)'}; known: {known}")
    return names


def guided_pictures(
    image: np.ndarray,
    names: list[str],
    *,
    maps: dict[str, np.ndarray],
    cpl: np.ndarray | None = None,
    lam: float = DEFAULT_LAMBDA,
    filter_name: str = DEFAULT_FILTER,
    sigma: float = DEFAULT_SIGMA,
) -> dict[str, np.ndarray]:
    """The pictures an encoder is given: ``none`` (the original, 8-bit RGB) and one per
    model in ``names``. ``maps`` holds each model's JND map (``resjnd`` for both ResJND
    entries); ``cpl`` is ResJND's CPL image ([0, 1]), needed for ``resjnd``."""
    out = {"none": as_rgb8(image)}
    for name in names:
        if name == "resjnd":
            if cpl is None:
                raise ResJNDError("the resjnd pre-processing needs ResJND's CPL image")
            c = np.asarray(cpl)
            out[name] = as_rgb8(np.clip(c, 0, 1).astype(np.float32))
            continue
        key = "resjnd" if name == RESJND_SMOOTH else name
        if key not in maps:
            raise ResJNDError(f"no JND map for {name}")
        out[name] = jnd_smooth(image, maps[key], lam=lam, filter_name=filter_name, sigma=sigma)
    return out


def compute_maps(
    image: np.ndarray,
    names: list[str],
    *,
    model: object | None = None,
    device: str = "auto",
    precision: str = "auto",
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(JND maps by model, ResJND's CPL image or None) for the models in ``names``."""
    from ..maps import classic_jnd, is_classic

    maps: dict[str, np.ndarray] = {}
    cpl = None
    if "resjnd" in names or RESJND_SMOOTH in names:
        if model is None:
            raise ResJNDError("the resjnd JND model needs ResJND weights")
        from ..inference import predict

        pred = predict(model, image, device=device, precision=precision, should_stop=should_stop)  # type: ignore[arg-type]
        maps["resjnd"], cpl = pred.jnd, pred.cpl
    for name in names:
        if is_classic(name):
            maps[name] = classic_jnd(name, image)
    return maps, cpl
