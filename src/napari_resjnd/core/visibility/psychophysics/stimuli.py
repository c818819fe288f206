"""Stimuli of a visibility test: a pristine image plus JND-shaped noise of scale
beta, the evaluation's noise (:func:`napari_resjnd.core.noise.noise_at_psnr`),
with beta set so that the PSNR is the one QUEST+ asks for.

A condition is one image and one JND model (or ``uniform``, the control: noise of
the same amplitude everywhere). The +-1 sign field is drawn once per image, so every
model's noise on an image differs only in its spatial shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import ResJNDError
from ...images import rgb255
from ...metrics import psnr as psnr_of
from ...noise import inject, noise_at_psnr, sign_field

#: The control condition's map: JND = 1 everywhere (plain uniform noise).
UNIFORM = "uniform"


@dataclass(frozen=True)
class Stimulus:
    """One trial's images as shown: H x W x 3 uint8."""

    pristine: np.ndarray
    distorted: np.ndarray
    #: The noise scale beta and the PSNR it reaches after 8-bit rounding.
    beta: float
    psnr: float


@dataclass
class ConditionStimuli:
    """The noise of one condition at any PSNR, betas remembered."""

    image: np.ndarray
    jnd: np.ndarray
    seed: int = 0
    _image255: np.ndarray = field(init=False, repr=False)
    _sign: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._image255 = np.rint(rgb255(self.image))
        if np.shape(self.jnd) != self._image255.shape[:2]:
            raise ResJNDError(f"the JND map is {np.shape(self.jnd)}, the image {self._image255.shape[:2]}")
        self._sign = sign_field(self._image255.shape[:2], self.seed)

    def at(self, psnr: float) -> Stimulus:
        """The distorted image at ``psnr`` dB as shown, after 8-bit rounding: beta by
        bisection on the rounded image's PSNR (within 0.05 dB where rounding allows)."""
        try:
            _, beta, _ = noise_at_psnr(self._image255, self.jnd, self._sign, float(psnr))
        except ValueError as e:
            raise ResJNDError(f"noise at {psnr:g} dB: {e}") from None
        lo, hi = 0.0, 4 * beta
        best = (math.inf, beta, self._image255)
        for _ in range(40):
            shown = np.rint(inject(self._image255, self.jnd, self._sign, beta))
            achieved = psnr_of(self._image255, shown)
            if abs(achieved - psnr) < abs(best[0] - psnr):
                best = (achieved, beta, shown)
            if abs(achieved - psnr) < 0.05:
                break
            lo, hi = (beta, hi) if achieved > psnr else (lo, beta)
            beta = (lo + hi) / 2
        achieved, beta, shown = best
        return Stimulus(self._image255.astype(np.uint8), shown.astype(np.uint8), float(beta), float(achieved))

    def with_beta(self, beta: float) -> Stimulus:
        """The stimulus a trial showed, rebuilt from the noise scale it recorded:
        rounded to 8 bits and clipped, exactly as shown."""
        shown = np.rint(inject(self._image255, self.jnd, self._sign, float(beta)))
        return Stimulus(
            self._image255.astype(np.uint8), shown.astype(np.uint8), float(beta), psnr_of(self._image255, shown)
        )
