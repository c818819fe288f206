"""Jiang et al. 2022, KLT-JND ("Toward top-down just noticeable difference
estimation of natural images"), as in the authors' code (OpenJND's
``Jiang et al/Matlab/KLT_JND.m`` and helpers).

Top-down: the image's 8 x 8 blocks are expressed in their own Karhunen-Loeve
basis (principal components of the blocks, the data centred only to find the
basis); the critical perceptual lossless image keeps the first L components,
and the JND is |image - CPL| lowered at edges (Wu 2017's edge protection). L is
the authors' Weibull rule: the Weibull-weighted mean (beta = 894.16, eta =
0.99805) of the component index over the cumulative energy share, rounded up.
"""

from __future__ import annotations

import numpy as np

from ..images import luminance
from ._common import pad8
from .wu2017 import edge_protection

BETA, ETA = 894.16, 0.99805


def klt_basis(blocks: np.ndarray) -> np.ndarray:
    """Principal axes (columns, by falling variance) of the rows of ``blocks`` (N x 64)."""
    centred = blocks - blocks.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[: max(1, min(blocks.shape[1], blocks.shape[0] - 1))].T


def critical_point(energy_share: np.ndarray) -> int:
    """The authors' Weibull rule for how many components a CPL image keeps."""
    cum = np.clip(np.cumsum(energy_share), 0, None)
    z = cum / ETA
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        f = (BETA / ETA) * z ** (BETA - 1) * np.exp(-(z**BETA))
    f = np.nan_to_num(f)
    if f.sum() <= 0:
        return len(energy_share)
    return int(np.ceil((np.arange(1, len(f) + 1) * f).sum() / f.sum()))


def klt_cpl(y: np.ndarray, keep: int | None = None) -> tuple[np.ndarray, int]:
    """(CPL image, components kept) for ``y`` with sides multiples of 8."""
    h, w = y.shape
    blocks = y.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    basis = klt_basis(blocks)
    coeff = blocks @ basis
    energy = (coeff**2).mean(0)
    keep = critical_point(energy / energy.sum()) if keep is None else keep
    rebuilt = coeff[:, :keep] @ basis[:, :keep].T
    return rebuilt.reshape(h // 8, w // 8, 8, 8).transpose(0, 2, 1, 3).reshape(h, w), keep


def jiang2022(image: np.ndarray) -> np.ndarray:
    """KLT-JND: |image - its KLT CPL image| times edge protection."""
    y = luminance(image)
    padded = pad8(y)
    cpl, _ = klt_cpl(padded)
    jnd = np.abs(padded - cpl) * edge_protection(padded)
    return jnd[: y.shape[0], : y.shape[1]].astype(np.float32)
