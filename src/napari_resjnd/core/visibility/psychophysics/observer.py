"""A simulated 2AFC observer with a known threshold, to test the procedure and to
try a design before booking observers; and the recovery runs behind
``resjnd visibility simulate``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .procedure import Trial, answer_with, run
from .psychometric import GUESS, LAPSE, Fit, fit, p_correct
from .session import Condition, ObserverSession


@dataclass
class SimulatedObserver:
    """Answers from the psychometric function of :mod:`.psychometric`."""

    threshold_psnr: float
    slope: float = 3.5
    guess: float = GUESS
    lapse: float = LAPSE
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def answer(self, psnr: float) -> bool:
        """True for a right answer to a trial at ``psnr``."""
        p = float(p_correct(psnr, self.threshold_psnr, self.slope, self.guess, self.lapse))
        return bool(self.rng.random() < p)


def run_once(observer: SimulatedObserver, trials: int, seed: int = 0) -> tuple[Fit, ObserverSession]:
    """The real trial loop (:func:`.procedure.run`, QUEST+ placement) for one
    condition against ``observer``, then the fit."""
    session = ObserverSession(
        observer.__class__.__name__,
        "2afc-side-by-side",
        [Condition("simulated", "simulated")],
        trials_per_condition=trials,
        seed=seed,
    )

    def answer(trial: Trial) -> int:
        return trial.target if observer.answer(trial.psnr) else 1 - trial.target

    answer_with(run(session), answer)
    s, y = zip(*session.answers("simulated | simulated"))
    return fit(s, y, seed=seed), session


def simulate(
    threshold_psnr: float,
    *,
    trials: int = 80,
    runs: int = 100,
    seed: int = 0,
    slope: float = 3.5,
    lapse: float = LAPSE,
) -> dict:
    """``runs`` independent runs; the JSON ``resjnd visibility simulate`` prints, plus
    the coverage of the 95 % intervals and the median absolute error."""
    rows = []
    for r in range(runs):
        observer = SimulatedObserver(threshold_psnr, slope, GUESS, lapse, seed=seed * 100_003 + r)
        f, _ = run_once(observer, trials, seed=seed * 100_003 + r)
        rows.append({"estimate": f.threshold, "ci_low": f.ci_low, "ci_high": f.ci_high, "slope": f.slope})
    est = np.array([r["estimate"] for r in rows])
    covered = [r["ci_low"] <= threshold_psnr <= r["ci_high"] for r in rows]
    return {
        "true_threshold_psnr": threshold_psnr,
        "trials": trials,
        "slope": slope,
        "guess": GUESS,
        "lapse": lapse,
        "coverage": float(np.mean(covered)),
        "median_abs_error_db": float(np.median(np.abs(est - threshold_psnr))),
        "runs": rows,
    }
