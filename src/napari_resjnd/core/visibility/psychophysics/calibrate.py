"""Calibration from observers: a JND model's alpha (and beta, where the data allow)
fitted by maximum likelihood on the trials as they were shown.

Every trial with a recorded noise scale is rebuilt exactly as shown: the session's
sign field, the noise model's map, the scale, 8-bit rounding and clipping
(:meth:`.stimuli.ConditionStimuli.with_beta`; a rebuilt stimulus whose PSNR is not
the recorded one is refused: the map or image differs from the session's). The
calibrated model predicts, for each, the neighbourhood ratio R behind ``p_detect``
(:mod:`..detection`), and the answer's likelihood is the procedure's

    P(correct) = guess + (1 - guess - lapse) (1 - exp(-(R / alpha)^beta))

with guess 0.5 (all three procedures are two-alternative) and lapse 0.02, the values
the threshold fits assume. For each beta of a grid, alpha maximises the
log-likelihood (a bounded one-dimensional search in log alpha); the profile over
beta picks beta when its likelihood-ratio interval (a drop of 1.92: 95 %) does not
reach both ends of the grid, else beta stays at 3.5 ("not constrained by the
data"). The log-likelihood is reported so that models can be compared on the same
trials. Trials are grouped by procedure and viewing condition: each group is its
own calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ...errors import ResJNDError
from ...maps import source
from ..calibration import Calibration
from ..detection import DEFAULT_SLOPE, VisibilityParams, pool, visibility
from ..thresholds import ratio
from ..viewing import DEFAULT_VIEWING, ViewingConditions
from .psychometric import GUESS, LAPSE
from .session import ObserverSession
from .stimuli import ConditionStimuli

#: The slopes the profile likelihood visits.
BETAS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.5, 6.0)
#: A drop of the log-likelihood that bounds a 95 % likelihood-ratio interval (chi^2_1 / 2).
LR_95 = 1.92
#: Below this many trials beta is not fitted.
MIN_TRIALS_FOR_BETA = 60


def log_likelihood(r: np.ndarray, correct: np.ndarray, alpha: float, beta: float) -> float:
    with np.errstate(divide="ignore"):
        z = beta * (np.log(r) - math.log(alpha))
    p_seen = -np.expm1(-np.exp(np.minimum(z, 700.0)))
    p = np.clip(GUESS + (1 - GUESS - LAPSE) * p_seen, 1e-12, 1 - 1e-12)
    return float(np.sum(np.where(correct, np.log(p), np.log1p(-p))))


def fit_alpha(r: np.ndarray, correct: np.ndarray, beta: float) -> tuple[float, float, bool]:
    """(alpha, log-likelihood, at the search's bound) for one beta."""
    from scipy.optimize import minimize_scalar

    positive = r[r > 0]
    lo = math.log(positive.min()) - 6 if positive.size else -6.0
    hi = math.log(r.max()) + 6 if r.max() > 0 else 6.0
    res = minimize_scalar(lambda la: -log_likelihood(r, correct, math.exp(la), beta), bounds=(lo, hi), method="bounded")
    at_bound = min(res.x - lo, hi - res.x) < 0.05
    return math.exp(res.x), -float(res.fun), bool(at_bound)


def alpha_interval(r: np.ndarray, correct: np.ndarray, alpha: float, beta: float, best: float) -> tuple[float, float]:
    """alpha's 95 % likelihood-ratio interval at ``beta`` (a scan in log alpha)."""
    grid = alpha * np.exp(np.linspace(-3, 3, 241))
    ll = np.array([log_likelihood(r, correct, a, beta) for a in grid])
    inside = grid[ll >= best - LR_95]
    return float(inside.min()), float(inside.max())


def fit(ratios: np.ndarray, correct: Sequence[bool], betas: Sequence[float] = BETAS) -> dict:
    """ratios: n_trials x len(betas) (R at each slope); the maximum-likelihood alpha and
    beta with their profile and intervals."""
    y = np.asarray(correct, bool)
    fits = [fit_alpha(ratios[:, k], y, b) for k, b in enumerate(betas)]
    ll = np.array([f[1] for f in fits])
    k = int(np.argmax(ll))
    inside = [b for b, v in zip(betas, ll) if v >= ll[k] - LR_95]
    constrained = y.size >= MIN_TRIALS_FOR_BETA and not (betas[0] in inside and betas[-1] in inside)
    if not constrained:
        k = list(betas).index(DEFAULT_SLOPE)
    alpha, best, at_bound = fits[k]
    low, high = alpha_interval(ratios[:, k], y, alpha, betas[k], best)
    return {
        "alpha": alpha,
        "beta": float(betas[k]),
        "beta_fitted": bool(constrained),
        "log_likelihood": best,
        "alpha_ci95": [low, high],
        "alpha_censored": at_bound,
        "beta_profile": {f"{b:g}": round(float(v), 4) for b, v in zip(betas, ll)},
        "beta_ci95": [min(inside), max(inside)],
        "trials": int(y.size),
        "correct": int(y.sum()),
    }


def calibrate(
    sessions: Sequence[ObserverSession],
    model: str,
    image: Callable[[str], np.ndarray],
    jnd: Callable[[str, str], np.ndarray],
    params: VisibilityParams | None = None,
    where: Callable[[ObserverSession], str] = lambda s: s.observer,
) -> list[Calibration]:
    """One :class:`Calibration` of ``model`` per (procedure, viewing condition) of the
    sessions; none where no trial recorded its noise scale (a simulated observer's).
    ``image(name)``: a condition's image; ``jnd(model, name)``: a map."""
    params = params or VisibilityParams()
    groups: dict[tuple, dict] = {}
    for s in sessions:
        viewing = s.viewing_conditions or DEFAULT_VIEWING
        key = (s.procedure, repr(sorted(viewing.as_dict().items())))
        g = groups.setdefault(key, {"viewing": viewing, "r": [], "y": [], "observers": [], "recorded": True})
        g["recorded"] &= s.viewing is not None
        g["observers"].append(s.observer)
        for r, y in _trial_ratios(s, model, image, jnd, params, viewing, where(s)):
            g["r"].append(r)
            g["y"].append(y)
    out = []
    for (procedure, _), g in groups.items():
        if not g["r"]:
            continue
        result = fit(np.array(g["r"]), g["y"])
        details = {k: result[k] for k in ("alpha_ci95", "alpha_censored", "beta_profile", "beta_ci95", "correct")}
        details["viewing_recorded"] = g["recorded"]
        details["guess"], details["lapse"] = GUESS, LAPSE
        out.append(
            Calibration(
                model=model,
                procedure=procedure,
                viewing=g["viewing"],
                alpha=result["alpha"],
                beta=result["beta"],
                beta_fitted=result["beta_fitted"],
                log_likelihood=result["log_likelihood"],
                trials=result["trials"],
                observers=tuple(dict.fromkeys(g["observers"])),
                pooling={
                    "jnd_floor": params.jnd_floor,
                    "neighbourhood_deg": params.neighbourhood_deg,
                    "peak_area_deg2": params.peak_area_deg2,
                    "pooling": params.pooling,
                },
                details=details,
            )
        )
    return out


def _ratios(
    pristine: np.ndarray,
    distorted: np.ndarray,
    target: np.ndarray,
    model: str,
    params: VisibilityParams,
    viewing: ViewingConditions,
) -> list[float]:
    """The neighbourhood ratio R behind p_detect at each slope of :data:`BETAS` (the
    error-to-threshold ratios computed once, except for DCT maps, whose block pooling
    uses the slope)."""
    src = source(model)
    if src.domain == "dct":
        return [
            visibility(
                pristine, distorted, target, replace(params, beta=b), model=model, viewing=viewing
            ).detection_ratio
            for b in BETAS
        ]
    r = ratio(
        pristine, distorted, target, domain=src.domain, viewing=viewing, floor=params.jnd_floor, beta=DEFAULT_SLOPE
    )
    return [pool(r, replace(params, beta=b), viewing, src.domain).detection_ratio for b in BETAS]


def _trial_ratios(
    session: ObserverSession,
    model: str,
    image: Callable[[str], np.ndarray],
    jnd: Callable[[str, str], np.ndarray],
    params: VisibilityParams,
    viewing: ViewingConditions,
    where: str,
) -> list[tuple[list[float], bool]]:
    """(R at each slope of :data:`BETAS`, right or wrong) for every trial with a noise scale."""
    by_key = {c.key: c for c in session.conditions}
    stimuli: dict[str, ConditionStimuli] = {}
    out = []
    for i, t in enumerate(session.trials):
        if t.get("beta") is None:
            continue
        c = by_key[t["condition"]]
        if c.key not in stimuli:
            stimuli[c.key] = ConditionStimuli(image(c.image), jnd(c.model, c.image), seed=session.seed)
        stim = stimuli[c.key].with_beta(t["beta"])
        if abs(stim.psnr - float(t["psnr"])) > 0.01:
            raise ResJNDError(
                f"{where}: trial {i} ({c.key}) rebuilt gives {stim.psnr:.3f} dB where the session showed "
                f"{float(t['psnr']):.3f} dB: the image or the {c.model} map differs from the session's "
                "(other weights or precision?)"
            )
        out.append(
            (_ratios(stim.pristine, stim.distorted, jnd(model, c.image), model, params, viewing), bool(t["correct"]))
        )
    return out
