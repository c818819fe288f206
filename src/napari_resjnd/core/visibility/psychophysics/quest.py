"""QUEST+ adaptive placement (Watson 2017) on the grid of :mod:`.psychometric`.

The posterior over (threshold, slope) starts uniform; each trial shows the
stimulus that minimises the expected entropy of the threshold's marginal
posterior (the psi-marginal variant, Prins 2013: trials go to the threshold, the
slope is a nuisance), and each answer multiplies in its likelihood. The state is
rebuilt from the recorded answers, which is how a session resumes.

Written here rather than taken from the ``questplus`` package, which is GPL-3.0
(this project is BSD-3-Clause).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .psychometric import LAPSE, SLOPES, THRESHOLDS, grid_likelihood

#: The PSNRs a trial may show (dB): 20 to 55 in 1-dB steps.
DEFAULT_STIMULI = np.round(np.arange(20.0, 55.001, 1.0), 2)


class QuestPlus:
    """One condition's adaptive staircase: :meth:`next_stimulus`, :meth:`update`."""

    def __init__(self, stimuli: Sequence[float] | np.ndarray = DEFAULT_STIMULI, lapse: float = LAPSE):
        self.stimuli = np.asarray(stimuli, np.float64)
        self.lapse = lapse
        self._likelihood = grid_likelihood(self.stimuli, lapse)  # S x T x K
        self.posterior = np.full((THRESHOLDS.size, SLOPES.size), 1.0 / (THRESHOLDS.size * SLOPES.size))

    def next_stimulus(self) -> float:
        """The PSNR whose answer is expected to leave the least entropy on the threshold."""
        joint_right = self._likelihood * self.posterior  # S x T x K
        p_right = joint_right.sum(axis=(1, 2))
        expected = np.zeros(self.stimuli.size)
        for joint, p in ((joint_right, p_right), (self.posterior - joint_right, 1 - p_right)):
            marginal = joint.sum(axis=2) / np.maximum(p, 1e-300)[:, None]
            entropy = -np.sum(marginal * np.log(np.maximum(marginal, 1e-300)), axis=1)
            expected += p * entropy
        return float(self.stimuli[int(np.argmin(expected))])

    def update(self, psnr: float, correct: bool) -> None:
        """Multiply in one answer at ``psnr`` (any value, not only the grid's)."""
        p = grid_likelihood(np.array([psnr]), self.lapse)[0]
        self.posterior = self.posterior * (p if correct else 1 - p)
        self.posterior /= self.posterior.sum()

    def threshold_marginal(self) -> np.ndarray:
        return self.posterior.sum(axis=1)

    def estimate(self) -> tuple[float, float, float]:
        """Posterior mean threshold and its central 95 % credible interval (dB)."""
        m = self.threshold_marginal()
        cdf = np.cumsum(m)
        low = float(np.interp(0.025, cdf, THRESHOLDS))
        high = float(np.interp(0.975, cdf, THRESHOLDS))
        return float(np.sum(m * THRESHOLDS)), low, high

    @classmethod
    def replay(cls, answers: Sequence[tuple[float, bool]], **kw: object) -> QuestPlus:
        q = cls(**kw)  # type: ignore[arg-type]
        for psnr, correct in answers:
            q.update(psnr, correct)
        return q
