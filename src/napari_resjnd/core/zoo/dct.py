"""DCT-domain JND models on 8 x 8 blocks: Zhang, Lin & Xue 2005 and Jia, Lin &
Kassim 2006 (still images: zero motion).

Both give a threshold per DCT coefficient; as in the authors' code (OpenJND's
``Zhang et al/Matlab/main.m`` and ``Jia et al/Matlab/JND_VIDEO.m``), the map holds
coefficient (i, j)'s threshold at pixel (i, j) of its block, so it is piecewise
constant per coefficient position, not a smooth per-pixel map.

Shared steps (written once here): the luminance adaptation of the DC
coefficient, the block classification into plain, edge and texture blocks by the
energy of coefficient groups, and the contrast-masking elevation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ResJNDError
from ..images import luminance
from ._common import block_dct, from_blocks, pad8, to_blocks

#: Display and DCT constants of both models.
M, LMAX, LMIN, C00 = 256.0, 130.0, 0.0, 1024.0
_I, _J = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
#: Coefficient groups (0-based (row, column) in the block).
EDGE = np.zeros((8, 8), bool)
EDGE[3:7, 0] = EDGE[0, 3:7] = EDGE[2, 1:3] = True
EDGE[1, 2] = EDGE[3, 3] = True
LOW = np.zeros((8, 8), bool)
LOW[1:3, 0] = LOW[0, 1:3] = LOW[1, 1] = True
#: Coefficients whose masking elevation is the block's texture factor alone.
FLAT_MASK = np.zeros((8, 8), bool)
FLAT_MASK[1:7, 0] = FLAT_MASK[0, 1:7] = FLAT_MASK[1, 1:3] = FLAT_MASK[2, 1:3] = FLAT_MASK[3, 3] = True
PLAIN, EDGE_BLOCK, TEXTURE = 0, 1, 2


def _frequencies(w: float) -> np.ndarray:
    """Spatial frequency (cycles/degree) of each DCT coefficient, pixel size ``w`` degrees."""
    return np.sqrt(_I**2 / w**2 + _J**2 / w**2) / 16


def _orientation_angle(freq: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 2 * freq[:, :1] * freq[:1, :] / freq**2
    s = np.where(_I == _J, 1.0, s)
    s[0, 0] = 0.0
    return np.arcsin(np.clip(s, -1, 1))


def _norm(i: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(i == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)), np.float64)


def luminance_factor(dc: np.ndarray) -> np.ndarray:
    """Threshold elevation from a block's DC coefficient (a quasi-parabola)."""
    return np.where(dc > C00, 0.8 * (dc / C00 - 1) ** 2 + 1, 2 * (1 - dc / C00) ** 3 + 1)


def classify(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, edge energy, low-frequency energy) per block from its coefficients."""
    a = np.abs(c)
    edg = a[..., EDGE].sum(-1)
    lowf = a[..., LOW].sum(-1)
    highf = a.sum((-2, -1)) - edg - lowf - c[..., 0, 0]
    edgn, lowfn, highfn = edg / 12, lowf / 5, highf / 46
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio, spread = lowfn / edgn, (lowfn + edgn) / highfn

        def edge_like(a_: float, b_: float, y_: float) -> np.ndarray:
            return ((ratio >= a_) & (spread >= b_)) | ((ratio >= b_) & (spread >= a_)) | (spread >= y_)

    energy = edg + highf
    cls = np.where(edge_like(2.3 * 3, 1.6 * 3, 16.0), EDGE_BLOCK, np.where(energy > 290, TEXTURE, PLAIN))
    busy = np.where(edge_like(1.0, 1.6, 2.0), EDGE_BLOCK, TEXTURE)
    cls = np.where(energy < 125, PLAIN, np.where(energy > 900, busy, cls))
    return cls, edg, lowf


def texture_factor(cls: np.ndarray, edg: np.ndarray, lowf: np.ndarray, highf_edg: np.ndarray) -> np.ndarray:
    """Each block's masking factor: from its texture energy (texture blocks), its
    edge energy (edge blocks), or 1 (plain blocks)."""
    tex = (2.5 - 1) * (highf_edg - 290) / (1800 - 290) + 1
    edge = np.where(edg + lowf <= 400, 1.125, 1.25)
    return np.where(cls == TEXTURE, tex, np.where(cls == EDGE_BLOCK, edge, 1.0))


def masking(c: np.ndarray, base: np.ndarray, flat_blocks: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Contrast-masking elevation per coefficient: max(1, |C / base|^0.36) times the
    block's texture factor; 1 at DC; the texture factor alone at the low and edge
    coefficients of ``flat_blocks``."""
    cls, edg, lowf = classify(c)
    highf = np.abs(c).sum((-2, -1)) - edg - lowf - c[..., 0, 0]
    tm = texture_factor(cls, edg, lowf, edg + highf)[..., None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.maximum(1.0, np.abs(c / base) ** 0.36) * tm
    a = np.where(flat_blocks(cls)[..., None, None] & FLAT_MASK, tm, a)
    a[..., 0, 0] = 1.0
    return a


#: The pixel size (degrees of visual angle) each model's CSF assumes, as in the authors' code.
ZHANG_PIXEL_DEG, JIA_PIXEL_DEG = 0.0298, 0.0342


def zhang2005_thresholds(pixel_deg: float = ZHANG_PIXEL_DEG) -> np.ndarray:
    """Base thresholds (grey levels) of the 64 coefficients: the Ahumada-Peterson CSF
    at 65 cd/m^2, pixels ``pixel_deg`` degrees wide (the authors': 0.0298)."""
    freq = _frequencies(pixel_deg)
    lb, s, r = 65.0, 0.25, 0.6
    k = 3.125 * (lb / 300) ** 0.0706
    fmin = 6.78 * (lb / 300) ** 0.182
    tmin = lb / 94.7 if lb > 13.45 else 13.45 / 94.7 * (lb / 13.45) ** 0.649
    f = freq.copy()
    f[0, 0] = freq[0, 1]
    ang = _orientation_angle(freq)
    g = np.log10(s * tmin / (r + (1 - r) * np.cos(ang) ** 2)) + k * (np.log10(f) - np.log10(fmin)) ** 2
    t = M * 10**g / (LMAX - LMIN) / _norm(_I) / _norm(_J)
    t[0, 0] = min(t[0, 1], t[1, 0])
    return t


def zhang2005(image: np.ndarray) -> np.ndarray:
    """Zhang, Lin & Xue 2005: CSF, luminance adaptation and block-classified contrast
    masking in the 8 x 8 DCT domain, scaled by 0.3 as in the authors' code."""
    y = luminance(image)
    c = block_dct(pad8(y))
    base = zhang2005_thresholds() * luminance_factor(c[..., 0, 0])[..., None, None]
    jnd = 0.3 * base * masking(c, base, lambda cls: cls == EDGE_BLOCK)
    return from_blocks(jnd)[: y.shape[0], : y.shape[1]].astype(np.float32)


def jia2006_thresholds(speed: float | np.ndarray = 0.0, pixel_deg: float = JIA_PIXEL_DEG) -> np.ndarray:
    """Base thresholds (grey levels) of the 64 coefficients from the spatio-temporal
    CSF at image speed ``speed`` degrees/s (0: a still image, where smooth-pursuit
    drift leaves the eye's minimum speed of 0.15 degrees/s), pixels ``pixel_deg``
    degrees wide (the authors': 0.0342). An array of speeds (one per block) gives
    (..., 8, 8) thresholds."""
    wx, s, v_min, v_max = pixel_deg, 0.92, 0.15, 80.0
    c0, c1, c2, c3, c4 = 1.14, 0.67, 1.7, 1.186, 3.677
    freq = _frequencies(wx)
    speed = np.asarray(speed, np.float64)[..., None, None]
    # residual retinal speed after smooth pursuit; kept off 0, where the CSF model has no value
    v_r = np.maximum(np.abs(speed - np.minimum(s * speed + v_min, v_max)), 1e-3)

    def csf(v: np.ndarray | float, gain: float) -> np.ndarray:
        k = 6.1 + 7.3 * np.abs(np.log10(c2 * np.asarray(v) / 3)) ** 3
        fmax = 45.9 / (c2 * np.asarray(v) + 2)
        return gain * k * c0 * c2 * v * (2 * np.pi * freq * c1) ** 2 * np.exp(-(4 * np.pi * c1 * freq) / (fmax * c3))

    v0 = 0.15
    sens = csf(v_r, c4)
    sens = np.where(v_r < 0.15, np.minimum(sens, csf(v0, c4)), sens)
    sens[..., 0, 0] = sens[..., 1, 0]
    sens = np.where(v_r > 0.15, np.maximum(sens, 0.08 * sens[..., :1, :1]), sens)
    fmax0 = 45.9 / (c2 * v0 + 2)
    fpeak0 = fmax0 / (2 * np.pi * c1)
    k0 = 6.1 + 7.3 * abs(np.log10(c2 * v0 / 3)) ** 3
    peak = k0 * c0 * c2 * v0 * (2 * np.pi * fpeak0 * c1) ** 2 * np.exp(-(4 * np.pi * c1 * fpeak0) / fmax0)
    orient = 1 / (0.6 + 0.4 * np.cos(_orientation_angle(freq)) ** 2)
    t = M * (peak / sens) * orient / (LMAX - LMIN) / _norm(_I) / _norm(_J)
    t[..., 0, 0] = np.minimum(t[..., 1, 0], t[..., 0, 1])
    return t


def jia2006(image: np.ndarray, speed: float | np.ndarray = 0.0) -> np.ndarray:
    """Jia, Lin & Kassim 2006 for a still image (zero motion): spatio-temporal CSF,
    luminance adaptation and contrast masking in the 8 x 8 DCT domain, scaled by 0.4.

    ``speed``: image speed in degrees/s, one value or one per 8 x 8 block (see
    :func:`jia2006_video`, which measures it between two frames)."""
    y = luminance(image)
    c = block_dct(pad8(y))
    base = jia2006_thresholds(speed) * luminance_factor(c[..., 0, 0])[..., None, None]
    jnd = 0.4 * base * masking(c, base, lambda cls: cls != TEXTURE)
    return from_blocks(jnd)[: y.shape[0], : y.shape[1]].astype(np.float32)


def block_speeds(frame: np.ndarray, previous: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Image speed (degrees/s) of every 8 x 8 block of ``frame``, from ``previous``.

    Motion comes from scikit-image's TV-L1 optical flow (the authors' block matcher
    is not in their released code: OpenJND ships a zero-motion placeholder), averaged
    per block; a block moving faster than 1.5 times its 5 x 5 neighbourhood's mean
    takes the neighbourhood's median, as the authors smooth outliers; pixels are
    0.0342 degrees wide (30 per degree), as in their code."""
    from scipy import ndimage
    from skimage.registration import optical_flow_tvl1

    y, y0 = pad8(luminance(frame)), pad8(luminance(previous))
    if y.shape != y0.shape:
        raise ResJNDError(f"frames differ in size: {y0.shape} then {y.shape}")
    v_row, v_col = optical_flow_tvl1(y0 / 255, y / 255)
    disp = np.hypot(to_blocks(v_row).mean((-2, -1)), to_blocks(v_col).mean((-2, -1)))
    mean = ndimage.uniform_filter(disp, 5, mode="reflect")
    disp = np.where(disp > 1.5 * mean, ndimage.median_filter(disp, 5, mode="reflect"), disp)
    return disp * fps / np.ceil(1 / 0.0342)


def jia2006_video(frame: np.ndarray, previous: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Jia et al. 2006 for a frame of a video: thresholds raised where the image moves."""
    return jia2006(frame, block_speeds(frame, previous, fps))
