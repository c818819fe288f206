"""JND-guided pre-processing: what an encoder is given instead of the original.

Two ways, one per kind of model:

- ``cpl``: a CPL model (ResJND) predicts the critical perceptual lossless (CPL)
  image, the picture that looks the same as the input but carries less visual
  redundancy; it is encoded in place of the original (what the CPL image is for).
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

from .. import maps as jnd_sources
from ..errors import ResJNDError
from ..maps import MapRequest, MapResult

log = logging.getLogger(__name__)

#: The default low-pass filter and its width.
DEFAULT_FILTER = "gaussian"
DEFAULT_SIGMA = 1.5
DEFAULT_LAMBDA = 1.0
#: The widest filter (px): its cost grows with the width (a median's with its square),
#: and a wider one is a mean over most of any image.
MAX_SIGMA = 25.0


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
    if not 0 < sigma <= MAX_SIGMA:
        raise ResJNDError(f"sigma {sigma}: the filter's width must lie above 0 and at most {MAX_SIGMA:g} px")
    x = as_rgb8(image).astype(np.float64)
    jnd = np.asarray(jnd, np.float64)
    if jnd.shape != x.shape[:2]:
        raise ResJNDError(f"the JND map is {jnd.shape}, the image {x.shape[:2]}")
    if not np.isfinite(jnd).all() or (jnd < 0).any():
        raise ResJNDError("the JND map must be finite and not negative")
    with np.errstate(over="ignore"):  # no step exceeds 255: a larger bound (even lambda x JND = inf) is 255
        bound = np.minimum(lam * jnd, 255.0)
    filtered = np.stack([FILTERS[filter_name](x[..., c], sigma) for c in range(3)], axis=-1)
    step = np.clip(filtered - x, -bound[..., None], bound[..., None])
    return np.clip(x + np.trunc(step), 0, 255).astype(np.uint8)


#: ``<model>-smooth``: a CPL model's map bounding the smoothing instead of its CPL image.
SMOOTH_SUFFIX = "-smooth"
#: ResJND's map driving the smoothing.
RESJND_SMOOTH = jnd_sources.DEFAULT_MODEL + SMOOTH_SUFFIX


def variants(name: str) -> list[str]:
    """The pre-processings a map source offers: a CPL model's CPL image and its map
    bounding the smoothing (``<model>-smooth``); any other model's map bounding it."""
    s = jnd_sources.source(name)
    return [s.name, s.name + SMOOTH_SUFFIX] if s.gives_cpl else [s.name]


def map_of(name: str) -> str:
    """The map source a pre-processing needs (``resjnd-smooth`` -> ``resjnd``)."""
    base = name[: -len(SMOOTH_SUFFIX)] if name.endswith(SMOOTH_SUFFIX) else name
    return jnd_sources.source(base).name


def uses_cpl(name: str) -> bool:
    """Whether the pre-processing ``name`` codes the model's CPL image."""
    return not name.endswith(SMOOTH_SUFFIX) and jnd_sources.source(name).gives_cpl


def title(name: str) -> str:
    """What a picker shows for the pre-processing ``name``."""
    t = jnd_sources.source(map_of(name)).title
    if uses_cpl(name):
        return f"{t}: CPL image"
    return f"{t}: map, smoothing" if name.endswith(SMOOTH_SUFFIX) else t


def guided_names(text: str) -> list[str]:
    """Comma-separated pre-processings for coding: a map source's name (a CPL model:
    its CPL image; any other: its map bounding the smoothing), ``<cpl model>-smooth``
    (its map bounding the smoothing), ``all`` (every source's every pre-processing)."""
    names: list[str] = []
    for part in (t.strip() for t in text.split(",")):
        if not part:
            continue
        if part.endswith(SMOOTH_SUFFIX) and jnd_sources.is_source(part[: -len(SMOOTH_SUFFIX)]):
            if not jnd_sources.source(part[: -len(SMOOTH_SUFFIX)]).gives_cpl:
                raise ResJNDError(f"{part}: only a CPL model has a -smooth variant (its map is always smoothed)")
            found = [map_of(part) + SMOOTH_SUFFIX]
        else:
            found = jnd_sources.parse_names(part, controls=False)
            if part == "all":
                found = [v for n in found for v in variants(n)]
        names += [n for n in found if n not in names]
    if not names:
        raise ResJNDError(
            f"no JND model named; known: all, {', '.join(v for n in jnd_sources.ALL for v in variants(n))}"
        )
    return names


def guided_pictures(
    image: np.ndarray,
    names: list[str],
    *,
    maps: dict[str, MapResult],
    lam: float = DEFAULT_LAMBDA,
    filter_name: str = DEFAULT_FILTER,
    sigma: float = DEFAULT_SIGMA,
) -> dict[str, np.ndarray]:
    """The pictures an encoder is given: ``none`` (the original, 8-bit RGB) and one per
    pre-processing in ``names``. ``maps`` holds each source's :class:`~..maps.MapResult`
    (with its CPL image for a CPL model coded as such)."""
    out = {"none": as_rgb8(image)}
    for name in names:
        key = map_of(name)
        if key not in maps:
            raise ResJNDError(f"no JND map for {name}")
        result = maps[key]
        if uses_cpl(name):
            if result.cpl is None:
                raise ResJNDError(f"the {name} pre-processing needs {key}'s CPL image")
            out[name] = as_rgb8(np.clip(np.asarray(result.cpl), 0, 1).astype(np.float32))
        else:
            out[name] = jnd_smooth(image, result.jnd, lam=lam, filter_name=filter_name, sigma=sigma)
    return out


def compute_maps(
    image: np.ndarray, names: list[str], request: MapRequest | None = None, given: dict[str, MapResult] | None = None
) -> dict[str, MapResult]:
    """The maps the pre-processings ``names`` need, by source: ``given`` ones kept
    (a CPL model's only with its CPL image where that is coded), the rest computed."""
    given = given or {}
    keep = {
        k: r for k, r in given.items() if r.cpl is not None or not any(uses_cpl(n) and map_of(n) == k for n in names)
    }
    missing = [k for k in dict.fromkeys(map_of(n) for n in names) if k not in keep]
    return keep | jnd_sources.compute(missing, image, request)
