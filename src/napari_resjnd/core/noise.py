"""JND-shaped noise: I' = clip(I + scale * S * JND), with S a seeded random +-1 field.

The noise is the same in R, G and B (luminance noise, which the JND models
describe). The noise-injection evaluation and the observers' stimuli both draw
from here, so a map's noise is the same wherever it is shown.
"""

from __future__ import annotations

import numpy as np

from .errors import ResJNDError
from .metrics import psnr


def sign_field(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=shape)


def inject(image255: np.ndarray, jnd: np.ndarray, sign: np.ndarray, scale: float) -> np.ndarray:
    """clip(image + scale x sign x JND) in [0, 255], the same noise on every channel."""
    noise = scale * sign * jnd
    return np.clip(image255 + (noise[..., None] if image255.ndim == 3 else noise), 0, 255)


def noise_at_psnr(
    image255: np.ndarray, jnd: np.ndarray, sign: np.ndarray, target: float, tol: float = 0.01
) -> tuple[np.ndarray, float, float]:
    """(noisy image, scale, achieved PSNR) with |PSNR - target| < tol, by bisection on the scale."""
    jnd = np.asarray(jnd, np.float64)
    if not np.isfinite(jnd).all() or jnd.max() <= 0:
        raise ResJNDError("the JND map must be finite and not all zero")
    lo, hi = 0.0, 1.0
    while psnr(image255, inject(image255, jnd, sign, hi)) > target:
        hi *= 2
        if hi > 1e6:
            raise ResJNDError(f"cannot bring the PSNR down to {target} dB with this map")
    for _ in range(200):
        mid = (lo + hi) / 2
        out = inject(image255, jnd, sign, mid)
        p = psnr(image255, out)
        if abs(p - target) < tol:
            return out, mid, p
        lo, hi = (mid, hi) if p > target else (lo, mid)
    raise ResJNDError(f"bisection did not reach {target} dB within {tol} dB (clipping saturates)")


def shuffled(jnd: np.ndarray, seed: int) -> np.ndarray:
    """Same values, positions permuted: the spatial alignment is destroyed."""
    flat = np.asarray(jnd).ravel().copy()
    np.random.default_rng(seed + 1).shuffle(flat)
    return flat.reshape(np.shape(jnd))
