"""The psychometric function of noise strength in PSNR, and its fit with a
bootstrap interval on the threshold.

Stimulus strength is the PSNR (dB) of JND-shaped noise: lower PSNR, stronger
noise. With the noise amplitude a proportional to 10 ** (-PSNR / 20), a Weibull
in amplitude (Quick 1974; Watson & Pelli 1983) is, in dB,

    F(s) = 1 - exp(-10 ** (slope * (T - s) / 20))
    P(correct | s) = guess + (1 - guess - lapse) * F(s)

T is the threshold PSNR: there F = 1 - 1/e, so a 2AFC observer (guess 0.5) with
no lapses is right 81.6 % of the time. ``slope`` is the Weibull exponent.

The fit is maximum likelihood on a grid of (T, slope) with the lapse rate fixed;
its 95 % interval on T is a parametric bootstrap (Wichmann & Hill 2001):
responses redrawn from the fitted function at the stimuli shown, refitted,
percentiles taken. Answers are counted per stimulus level, and all resamples
are fitted at once (one matrix product).

A threshold outside the range of the stimuli shown (or at the grid's end) is not a
measurement but a bound: the fit flags it **censored** ("above": even the weakest
noise shown was seen, the threshold PSNR is at least this; "below": even the
strongest was not seen reliably, it is at most this).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: 2AFC: the chance of a right answer by guessing.
GUESS = 0.5
#: The lapse rate the fit assumes (answers wrong whatever the stimulus).
LAPSE = 0.02
#: Threshold grid (dB PSNR) of the fit and of QUEST+.
THRESHOLDS = np.round(np.arange(10.0, 70.001, 0.5), 2)
#: Slope grid (Weibull exponent) of the fit and of QUEST+.
SLOPES = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.5, 6.0, 8.0])
#: Bootstrap resamples.
BOOTSTRAP = 500


def detection(psnr: np.ndarray | float, threshold: np.ndarray | float, slope: np.ndarray | float) -> np.ndarray:
    """F: the probability that noise at ``psnr`` is detected (no guessing, no lapses)."""
    z = np.clip(np.asarray(slope) * (np.asarray(threshold) - np.asarray(psnr)) / 20.0, -30, 3)
    return -np.expm1(-(10.0**z))


def p_correct(
    psnr: np.ndarray | float,
    threshold: np.ndarray | float,
    slope: np.ndarray | float,
    guess: float = GUESS,
    lapse: float = LAPSE,
) -> np.ndarray:
    """P(correct) of a 2AFC trial at ``psnr`` (broadcasting over every argument)."""
    return guess + (1.0 - guess - lapse) * detection(psnr, threshold, slope)


def grid_likelihood(stimuli: np.ndarray, lapse: float = LAPSE) -> np.ndarray:
    """P(correct) for each stimulus and each (threshold, slope) of the grid:
    len(stimuli) x len(THRESHOLDS) x len(SLOPES)."""
    s = np.asarray(stimuli, np.float64)[:, None, None]
    return p_correct(s, THRESHOLDS[None, :, None], SLOPES[None, None, :], lapse=lapse)


@dataclass(frozen=True)
class Fit:
    """A psychometric fit: the threshold PSNR, its bootstrap 95 % interval, the slope."""

    threshold: float
    ci_low: float
    ci_high: float
    slope: float
    trials: int
    #: None, or "above" / "below": the threshold lies beyond the stimuli shown (a bound).
    censored: str | None = None

    def as_dict(self) -> dict:
        return {
            "threshold_psnr": self.threshold,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "slope": self.slope,
            "trials": self.trials,
            "censored": self.censored,
        }


def _best(loglik: np.ndarray) -> np.ndarray:
    """Index of the best (threshold, slope) per row of B x (T*S) log-likelihoods."""
    return np.argmax(loglik, axis=-1)


def fit(
    stimuli: Sequence[float],
    correct: Sequence[bool],
    *,
    lapse: float = LAPSE,
    resamples: int = BOOTSTRAP,
    seed: int = 0,
) -> Fit:
    """Maximum-likelihood threshold and slope, with a parametric-bootstrap 95 % interval."""
    s = np.asarray(stimuli, np.float64)
    y = np.asarray(correct, bool)
    if s.size == 0 or s.size != y.size:
        raise ValueError(f"a fit needs as many answers as stimuli and at least one ({s.size} and {y.size})")
    levels, where = np.unique(s, return_inverse=True)  # adaptive runs repeat stimuli
    shown = np.bincount(where, minlength=levels.size).astype(np.float64)
    right = np.bincount(where, weights=y.astype(np.float64), minlength=levels.size)
    p = grid_likelihood(levels, lapse).reshape(levels.size, -1)  # U x P
    log_p, log_q = np.log(p), np.log1p(-p)
    best = int(_best(right @ log_p + (shown - right) @ log_q))
    ti, si = np.unravel_index(best, (THRESHOLDS.size, SLOPES.size))
    rng = np.random.default_rng(seed)
    redrawn = rng.binomial(shown.astype(np.int64), p[:, best], size=(resamples, levels.size)).astype(np.float64)
    # einsum, not @: BLAS threads fight over a busy machine's cores (20 ms instead of 3)
    loglik = np.einsum("bu,up->bp", redrawn, log_p) + np.einsum("bu,up->bp", shown - redrawn, log_q)
    boot = THRESHOLDS[np.unravel_index(_best(loglik), (THRESHOLDS.size, SLOPES.size))[0]]
    low, high = np.percentile(boot, [2.5, 97.5])
    t = float(THRESHOLDS[ti])
    censored = None
    if t > levels.max() or t >= THRESHOLDS[-1]:
        censored = "above"
    elif t < levels.min() or t <= THRESHOLDS[0]:
        censored = "below"
    return Fit(t, float(low), float(high), float(SLOPES[si]), int(s.size), censored)


def percent_correct_at_threshold(guess: float = GUESS, lapse: float = LAPSE) -> float:
    """P(correct) at the threshold: guess + (1 - guess - lapse)(1 - 1/e)."""
    return guess + (1 - guess - lapse) * (1 - math.exp(-1))
