"""Stimuli of a visibility test: a pristine image plus JND-shaped noise of scale
beta, the evaluation's noise (:func:`napari_resjnd.core.evaluate.noise_at_psnr`),
with beta set so that the PSNR is the one QUEST+ asks for.

A condition is one image and one JND model (or ``uniform``, the control: noise of
the same amplitude everywhere). The +-1 sign field is drawn once per image, so every
model's noise on an image differs only in its spatial shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ResJNDError
from ..evaluate import noise_at_psnr, sign_field
from ..images import rgb255

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
        """The distorted image at ``psnr`` dB (beta by bisection, then 8-bit rounding)."""
        try:
            noisy, beta, _ = noise_at_psnr(self._image255, self.jnd, self._sign, float(psnr))
        except ValueError as e:
            raise ResJNDError(f"noise at {psnr:g} dB: {e}") from None
        shown = np.rint(noisy)
        mse = float(np.mean((shown - self._image255) ** 2))
        achieved = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
        return Stimulus(self._image255.astype(np.uint8), shown.astype(np.uint8), beta, achieved)
