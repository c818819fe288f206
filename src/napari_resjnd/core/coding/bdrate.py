"""The Bjontegaard delta rate (VCEG-M33) of JND-guided curves against the plain codec.

BD-rate: the mean difference of log10(bpp) between two curves over the metric
interval where both exist, as a percentage of bits: negative means the JND-guided
curve needs fewer bits for the same score. The curves are interpolated
piecewise-cubically (PCHIP, the default, monotone and without overshoot) or with
VCEG-M33's single cubic polynomial (``cubic``), by the ``bjontegaard`` package.
Curves whose metric ranges do not overlap give NaN and say so; nothing is
extrapolated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ResJNDError, missing_library
from .sweep import METRICS, PLAIN, RDPoint

INTERPOLATIONS = {"pchip": "piecewise cubic Hermite (PCHIP)", "cubic": "cubic polynomial (VCEG-M33)"}


@dataclass(frozen=True)
class BDRate:
    """A Bjontegaard delta rate, or why there is none."""

    #: Percent of bits of the test curve against the anchor at equal score (NaN: none).
    percent: float
    #: Overlap of the two score ranges as a fraction of their union (0: disjoint).
    overlap: float
    #: Why the value is NaN, or a caveat ("" when none).
    note: str = ""


def _curve(rates: Iterable[float], scores: Iterable[float]) -> tuple[np.ndarray, np.ndarray, str]:
    """(rates, scores) sorted by score, or a reason they cannot make a curve."""
    r, s = np.asarray(list(rates), np.float64), np.asarray(list(scores), np.float64)
    keep = np.isfinite(r) & np.isfinite(s) & (r > 0)
    r, s = r[keep], s[keep]
    order = np.argsort(s, kind="stable")
    r, s = r[order], s[order]
    if len(s) < 2:
        return r, s, f"fewer than 2 finite points ({len(s)})"
    if np.any(np.diff(s) <= 0):
        return r, s, "two qualities gave the same score (the curve is not a function of the score)"
    return r, s, ""


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_score: Sequence[float],
    test_rate: Sequence[float],
    test_score: Sequence[float],
    method: str = "pchip",
) -> BDRate:
    """BD-rate of the test curve against the anchor (see the module docstring)."""
    if method not in INTERPOLATIONS:
        raise ResJNDError(f"unknown interpolation {method!r}; known: {', '.join(INTERPOLATIONS)}")
    ra, sa, why_a = _curve(anchor_rate, anchor_score)
    rt, st, why_t = _curve(test_rate, test_score)
    if why_a or why_t:
        return BDRate(math.nan, math.nan, f"{'anchor' if why_a else 'test'}: {why_a or why_t}")
    if method == "cubic" and min(len(sa), len(st)) < 4:
        return BDRate(math.nan, math.nan, "the cubic (VCEG-M33) fit needs 4 points per curve")
    lo, hi = max(sa[0], st[0]), min(sa[-1], st[-1])
    span = max(sa[-1], st[-1]) - min(sa[0], st[0])
    overlap = max(hi - lo, 0.0) / span if span > 0 else 0.0
    if hi <= lo:
        ranges = f"{sa[0]:.4g}-{sa[-1]:.4g} vs {st[0]:.4g}-{st[-1]:.4g}"
        return BDRate(math.nan, 0.0, f"score ranges do not overlap ({ranges}); not extrapolated")
    import warnings

    from bjontegaard import bd_rate as _bd_rate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the overlap is reported in the result instead
        value = float(_bd_rate(ra, sa, rt, st, method=method, require_matching_points=False, min_overlap=0))
    note = f"scores overlap over {overlap:.0%} of their range" if overlap < 0.5 else ""
    return BDRate(value, overlap, note)


def _missing_bjontegaard() -> None:
    try:
        import bjontegaard  # noqa: F401
    except ImportError:
        raise missing_library("BD-rate", "bjontegaard") from None


def bd_rows(points: Sequence[RDPoint], metrics: Sequence[str] = METRICS, method: str = "pchip") -> list[dict]:
    """BD-rate of every JND-guided curve against the plain codec, per codec and metric."""
    _missing_bjontegaard()
    rows = []
    codecs = list(dict.fromkeys(p.codec for p in points))
    guided = [j for j in dict.fromkeys(p.jnd for p in points) if j != PLAIN]
    for c in codecs:
        anchor = [p for p in points if p.codec == c and p.jnd == PLAIN]
        for j in guided:
            test = [p for p in points if p.codec == c and p.jnd == j]
            for m in metrics:
                bd = bd_rate(
                    [p.bpp for p in anchor],
                    [p.metrics[m] for p in anchor],
                    [p.bpp for p in test],
                    [p.metrics[m] for p in test],
                    method,
                )
                rows.append(
                    {"codec": c, "jnd": j, "metric": m, "bd_rate_percent": bd.percent}
                    | {"overlap": float(bd.overlap), "note": bd.note}
                )
    return rows


def mean_rows(per_image: Sequence[dict]) -> list[dict]:
    """``image = mean`` rows: the mean BD-rate over the images that have one."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in per_image:
        groups.setdefault((r["codec"], r["jnd"], r["metric"]), []).append(r["bd_rate_percent"])
    out = []
    for (c, j, m), values in groups.items():
        finite = [v for v in values if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else math.nan
        left = len(values) - len(finite)
        note = f"{left} of {len(values)} images have no BD-rate" if left else ""
        out.append(
            {"codec": c, "jnd": j, "image": "mean", "metric": m, "bd_rate_percent": mean}
            | {"images": len(finite), "note": note}
        )
    return out


def rate_at(points: Sequence[RDPoint], quality: float) -> float:
    """bpp of one curve at ``quality``, linear in log(bpp) between the nearest qualities."""
    qs = np.array([p.quality for p in points], np.float64)
    rs = np.log([p.bpp for p in points])
    order = np.argsort(qs)
    return float(np.exp(np.interp(quality, qs[order], rs[order])))


def quality_for_rate(points: Sequence[RDPoint], bpp: float) -> int:
    """The quality at which a curve reaches ``bpp``, interpolated in log(bpp) (clamped to the sweep)."""
    qs = np.array([p.quality for p in points], np.float64)
    rs = np.log([p.bpp for p in points])
    order = np.argsort(rs)
    return round(float(np.interp(math.log(bpp), rs[order], qs[order])))


def check_libraries() -> None:
    """One line naming the pip command when a metric's or BD-rate's library is missing."""
    _missing_bjontegaard()
    try:
        import ssimulacra2  # noqa: F401
    except ImportError:
        raise missing_library("the ssimulacra2 metric", "ssimulacra2") from None
