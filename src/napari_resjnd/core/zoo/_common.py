"""What the classic models share: luminance, MATLAB-style filtering, 8 x 8 DCT blocks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError


def correlate(y: np.ndarray, kernel: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """MATLAB's ``filter2(kernel, y)`` (correlation, same size). The authors' code pads
    with zeros; ``mode="reflect"`` (the default here) avoids the false structure that
    zero padding puts along the border, and changes nothing further in than the
    kernel's radius."""
    return ndimage.correlate(y, np.asarray(kernel, np.float64), mode=mode, cval=0.0)


def matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``round``: halves away from zero (numpy rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``: size x size, summing to 1."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def local_std(y: np.ndarray, size: int) -> np.ndarray:
    """Standard deviation in a size x size window (borders reflected)."""
    mean = ndimage.uniform_filter(y, size, mode="reflect")
    var = ndimage.uniform_filter(y * y, size, mode="reflect") - mean**2
    return np.sqrt(np.clip(var, 0, None))


def dct_matrix(n: int = 8) -> np.ndarray:
    """MATLAB's ``dctmtx(n)``: orthonormal DCT-II, rows are basis functions."""
    k, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * j + 1) * k / (2 * n))
    d[0] /= np.sqrt(2.0)
    return d


def pad8(y: np.ndarray) -> np.ndarray:
    """``y`` extended by mirroring to sides that are multiples of 8. The authors'
    code crops instead; padding gives a map for every pixel and equals theirs
    wherever theirs exists."""
    h, w = y.shape
    if h < 8 or w < 8:
        raise ResJNDError(f"the DCT-domain models need an image of at least 8 x 8 pixels, got {h} x {w}")
    return np.pad(y, ((0, -h % 8), (0, -w % 8)), mode="symmetric")


def to_blocks(y: np.ndarray) -> np.ndarray:
    """H x W (multiples of 8) -> (H/8, W/8, 8, 8) blocks."""
    h, w = y.shape
    return y.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def from_blocks(b: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_blocks`."""
    r, c = b.shape[:2]
    return b.transpose(0, 2, 1, 3).reshape(r * 8, c * 8)


def block_dct(y: np.ndarray) -> np.ndarray:
    """The 8 x 8 DCT of every block: (H/8, W/8, 8, 8) coefficients."""
    t = dct_matrix(8)
    return t @ to_blocks(y) @ t.T
