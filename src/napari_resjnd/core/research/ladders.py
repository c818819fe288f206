"""Distortion ladders: K versions of an image patch in increasing distortion.

Level 0 is always the original. Every generator is deterministic under its seed,
and levels are ordered by measured PSNR (highest first), so a ladder is
monotonic in distortion even where a codec's quality setting is not.

Generators:
- ``klt``: the image-specific KLT of 8 x 8 blocks (the "top-down" CPL
  construction of KLT-JND, Jiang et al., TIP 2022): blocks of all three
  channels share one 64-dimensional basis estimated from the patch itself,
  and level k keeps the top L_k components (L from 64 down to 1);
- ``jpeg``, ``webp``: Pillow at falling quality;
- ``noise``: JND-guided noise, clip(I + beta * S * JND) with a seeded +-1 field S
  and beta rising linearly to ``strength`` (the map: given, or Chou & Li);
- ``blur``: Gaussian blur of rising sigma; ``quant``: uniform quantisation of
  rising step.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError

GENERATORS = ("klt", "jpeg", "webp", "noise", "blur", "quant")


@dataclass
class Ladder:
    """``levels[k]``: H x W x 3 float in [0, 255]; ``psnr[k]`` against level 0."""

    generator: str
    levels: list[np.ndarray]
    psnr: list[float]
    params: list = field(default_factory=list)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def klt_basis(patch255: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """(blocks N x 64, mean, eigenvectors by falling variance, padded shape)."""
    h, w, c = patch255.shape
    ph, pw = -h % 8, -w % 8
    p = np.pad(patch255, ((0, ph), (0, pw), (0, 0)), mode="reflect") if (ph or pw) else patch255
    H, W = p.shape[:2]
    blocks = p.reshape(H // 8, 8, W // 8, 8, c).transpose(4, 0, 2, 1, 3).reshape(-1, 64)
    mean = blocks.mean(0)
    cov = np.cov((blocks - mean).T) if len(blocks) > 1 else np.zeros((64, 64))
    vals, vecs = np.linalg.eigh(cov)
    return blocks, mean, vecs[:, np.argsort(vals)[::-1]], (H, W, c)


def klt_reconstruct(patch255: np.ndarray, components: int) -> np.ndarray:
    """The patch rebuilt from its top ``components`` KLT components (64: exact)."""
    blocks, mean, vecs, (H, W, c) = klt_basis(np.asarray(patch255, np.float64))
    v = vecs[:, :components]
    rec = (blocks - mean) @ v @ v.T + mean
    img = rec.reshape(c, H // 8, W // 8, 8, 8).transpose(1, 3, 2, 4, 0).reshape(H, W, c)
    h, w = patch255.shape[:2]
    return img[:h, :w]


def _codec(patch255: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(patch255), 0, 255).astype(np.uint8)).save(buf, format=fmt, quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), np.float64)


def make_ladder(
    patch: np.ndarray,
    generator: str,
    levels: int = 8,
    *,
    seed: int = 0,
    jnd: np.ndarray | None = None,
    strength: float = 3.0,
) -> Ladder:
    """A ladder of ``levels`` versions (level 0 the original) of an RGB patch
    (uint8, or float in [0, 1])."""
    from ..images import rgb255

    if generator not in GENERATORS:
        raise ResJNDError(f"unknown ladder generator {generator!r}; known: {', '.join(GENERATORS)}")
    if levels < 2:
        raise ResJNDError("a ladder needs at least 2 levels")
    x = rgb255(patch)
    steps = np.linspace(0, 1, levels)[1:]
    if generator == "klt":
        params = [round(64 - s * 63) for s in steps]
        cands = [klt_reconstruct(x, L) for L in params]
    elif generator in ("jpeg", "webp"):
        params = [round(95 - s * 90) for s in steps]
        cands = [_codec(x, generator.upper(), q) for q in params]
    elif generator == "noise":
        if jnd is None:
            from ..zoo.pixel import chou1995

            jnd = chou1995(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        sign = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=x.shape[:2])
        params = [float(s * strength) for s in steps]
        cands = [x + (b * sign * np.asarray(jnd, np.float64))[..., None] for b in params]
    elif generator == "blur":
        params = [float(0.3 + s * 2.7) for s in steps]
        cands = [ndimage.gaussian_filter(x, (sg, sg, 0), mode="reflect") for sg in params]
    else:  # quant
        params = [float(2 + s * 30) for s in steps]
        cands = [np.floor(x / q) * q + q / 2 for q in params]
    cands = [np.clip(c, 0, 255) for c in cands]
    scored = sorted(zip([_psnr(x, c) for c in cands], range(len(cands))), key=lambda t: -t[0])
    return Ladder(
        generator,
        [x] + [cands[i] for _, i in scored],
        [float("inf")] + [p for p, _ in scored],
        [None] + [params[i] for _, i in scored],
    )
