"""Image quality metrics, in one table that every job reads.

All on 8-bit-range data (data_range 255), the distorted image scored against the
reference (for coding: always the ORIGINAL, never the pre-processed picture).

- psnr: over R, G, B;
- ssim: scikit-image, on luminance Y (BT.601), Gaussian window sigma 1.5,
  K1 0.01, K2 0.03, population covariance (Wang et al. 2004);
- ms_ssim: pytorch-msssim on Y, 11-tap Gaussian sigma 1.5, 5 scales with the
  standard weights (needs a side > 160 px, else NaN);
- vifp: pixel-domain VIF (Sheikh & Bovik 2006) on Y, 4 scales, sigma_nsq 2,
  same-size Gaussian filtering with reflected borders (the reference uses "valid");
- gmsd: Xue et al. 2014 on Y (2 x 2 mean, downsample by 2, Prewitt, c = 170);
  lower is better;
- pspnr: PSNR counting only the error above a reference JND map (by default
  NAMM): e = max(|I' - I| - JND_ref, 0) over R, G, B;
- ssimulacra2: the ``ssimulacra2`` package (a NumPy port of libjxl's tool), on
  sRGB; 100 for identical images.

A metric defined only above a size (its window, its scales) is NaN below it, never
a score: :func:`undefined` says why. A metric whose library is missing is left out
by :func:`usable`, with the pip command that brings it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .errors import ResJNDError, library_problem, missing_library
from .images import to_y


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(y1: np.ndarray, y2: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(y1, y2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    )


def ms_ssim(y1: np.ndarray, y2: np.ndarray) -> float:
    if min(y1.shape) <= 160:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    return float(_ms(t(y1), t(y2), data_range=255, win_size=11, win_sigma=1.5))


def vifp(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """Pixel-domain visual information fidelity (the reference vifvec pixel version)."""
    ref, dist = np.asarray(ref, np.float64), np.asarray(dist, np.float64)
    num = den = 0.0
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        sd = n / 5.0

        def filt(a, sd=sd, n=n):
            return ndimage.gaussian_filter(a, sd, truncate=((n - 1) / 2) / sd, mode="reflect")

        if scale > 1:
            ref, dist = filt(ref)[::2, ::2], filt(dist)[::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        s1 = np.maximum(filt(ref * ref) - mu1**2, 0)
        s2 = np.maximum(filt(dist * dist) - mu2**2, 0)
        s12 = filt(ref * dist) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        g = np.where(s1 < eps, 0, g)
        sv = np.where(s1 < eps, s2, sv)
        s1 = np.where(s1 < eps, 0, s1)
        g = np.where(s2 < eps, 0, g)
        sv = np.where(s2 < eps, 0, sv)
        sv = np.where(g < 0, s2, sv)
        g = np.maximum(g, 0)
        sv = np.maximum(sv, eps)
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return float(num / den) if den > 0 else math.nan


def gmsd(ref: np.ndarray, dist: np.ndarray, c: float = 170.0) -> float:
    """Gradient magnitude similarity deviation (lower is better)."""

    def prep(a):
        a = ndimage.uniform_filter(np.asarray(a, np.float64), 2, mode="nearest", origin=(-1, -1))
        return a[::2, ::2]

    px = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) / 3.0

    def gm(a):
        return np.hypot(ndimage.correlate(a, px, mode="nearest"), ndimage.correlate(a, px.T, mode="nearest"))

    m1, m2 = gm(prep(ref)), gm(prep(dist))
    gms = (2 * m1 * m2 + c) / (m1**2 + m2**2 + c)
    return float(np.std(gms))


def pspnr(ref255: np.ndarray, dist255: np.ndarray, jnd_ref: np.ndarray) -> float:
    j = np.asarray(jnd_ref, np.float64)
    e = np.maximum(np.abs(np.asarray(dist255, np.float64) - ref255) - (j[..., None] if ref255.ndim == 3 else j), 0)
    mse = float(np.mean(e**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssimulacra2(original: np.ndarray, decoded: np.ndarray) -> float:
    """SSIMULACRA2 of two H x W x 3 uint8 images (100: identical)."""
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        raise missing_library("the ssimulacra2 metric", "ssimulacra2") from None
    from PIL import Image

    def ppm(a: np.ndarray) -> io.BytesIO:  # the package reads files; PPM is lossless and fast
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PPM")
        buf.seek(0)
        return buf

    return float(compute_ssimulacra2(ppm(original), ppm(decoded)))


@dataclass(frozen=True)
class Pair:
    """One reference/distorted pair in the forms the metrics take, made once."""

    ref255: np.ndarray
    dist255: np.ndarray
    jnd_ref: np.ndarray | None = None

    @property
    def ys(self) -> tuple[np.ndarray, np.ndarray]:
        return to_y(self.ref255), to_y(self.dist255)

    def rgb8(self) -> tuple[np.ndarray, np.ndarray]:
        as8 = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return as8(self.ref255), as8(self.dist255)


@dataclass(frozen=True)
class Metric:
    """One metric: what it is called, which way is better, and how to compute it."""

    name: str
    title: str
    higher_is_better: bool
    compute: Callable[[Pair], float]
    #: Whether it needs a reference JND map (``Pair.jnd_ref``).
    needs_jnd: bool = False
    #: The smallest height and width it is defined for (its window, its scales), and why.
    min_side: int = 1
    why_min: str = ""
    #: The optional package it needs (None: a dependency of the package itself).
    library: str | None = None

    def undefined(self, shape: Sequence[int]) -> str | None:
        """Why the metric has no value on images of ``shape`` (None: it has one)."""
        h, w = int(shape[0]), int(shape[1])
        if min(h, w) >= self.min_side:
            return None
        k = self.min_side
        return f"{self.name} is defined from {k} x {k} px ({self.why_min}); the image is {w} x {h}: NaN"


def _pspnr(p: Pair) -> float:
    if p.jnd_ref is None:
        raise ResJNDError("pspnr needs a reference JND map")
    return pspnr(p.ref255, p.dist255, p.jnd_ref)


#: Every metric, by name.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("psnr", "PSNR (dB)", True, lambda p: psnr(p.ref255, p.dist255)),
        Metric("ssim", "SSIM", True, lambda p: ssim(*p.ys), min_side=11, why_min="its 11-px Gaussian window"),
        Metric(
            "ms_ssim", "MS-SSIM", True, lambda p: ms_ssim(*p.ys), min_side=161, why_min="an 11-px window at 5 scales"
        ),
        Metric("vifp", "VIFp", True, lambda p: vifp(*p.ys)),
        Metric(
            "gmsd",
            "GMSD (lower is better)",
            False,
            lambda p: gmsd(*p.ys),
            min_side=6,
            why_min="a 3-px gradient at half size",
        ),
        Metric("pspnr", "PSPNR (dB)", True, _pspnr, needs_jnd=True),
        Metric(
            "ssimulacra2",
            "SSIMULACRA2",
            True,
            lambda p: ssimulacra2(*p.rgb8()),
            min_side=8,
            why_min="its 6 scales; below it the tool scores any pair 100",
            library="ssimulacra2",
        ),
    )
}
#: Which way each metric is better, by name.
HIGHER_IS_BETTER = {name: m.higher_is_better for name, m in METRICS.items()}
#: The panel of the noise-injection evaluation.
EVALUATION_METRICS = ("psnr", "ssim", "ms_ssim", "vifp", "gmsd", "pspnr")
#: What a coded picture is scored with against the original.
CODING_METRICS = ("psnr", "ms_ssim", "ssimulacra2", "vifp", "gmsd")


def score(
    ref255: np.ndarray, dist255: np.ndarray, names: Sequence[str], jnd_ref: np.ndarray | None = None
) -> dict[str, float]:
    """The metrics ``names`` of ``dist255`` against ``ref255`` (H x W x 3 in [0, 255])."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ResJNDError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    pair = Pair(np.asarray(ref255, np.float64), np.asarray(dist255, np.float64), jnd_ref)
    shape = pair.ref255.shape
    return {n: math.nan if METRICS[n].undefined(shape) else METRICS[n].compute(pair) for n in names}


def undefined(names: Sequence[str], shape: Sequence[int]) -> dict[str, str]:
    """The metrics of ``names`` that have no value on images of ``shape``, each with why."""
    return {n: why for n in names if (why := METRICS[n].undefined(shape))}


def usable(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``names`` split into those that run here and those left out because their
    library is missing (each with the pip command that brings it)."""
    kept, left = [], {}
    for n in names:
        lib = METRICS[n].library
        problem = library_problem(lib) if lib else None
        if problem is None:
            kept.append(n)
        else:
            left[n] = f"{problem}: pip install {lib} (or pip install 'napari-resjnd[coding]')"
    return kept, left
