"""JND-guided noise injection at equal PSNR, the metric panel, and paired statistics.

A JND map is judged by the noise it hides: I' = clip(I + scale * S * JND), with S a
random +-1 field drawn once per image (seeded) and shared by every map compared
(:mod:`..noise`), and the scale found by bisection so that PSNR(I, I') hits the
target within 0.01 dB. Images stay in float (no 8-bit rounding) so the PSNR is
exact. The metrics are :mod:`..metrics`' (its :data:`~..metrics.EVALUATION_METRICS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .. import maps as jnd_sources
from ..errors import ResJNDError
from ..images import luminance, rgb255
from ..metrics import EVALUATION_METRICS, HIGHER_IS_BETTER, score
from ..model import ResJND
from ..noise import noise_at_psnr, shuffled, sign_field

#: The controls: ``uniform`` (a source of :mod:`..maps`) and ``shuffled`` (a map's values, permuted).
CONTROLS = ("uniform", "shuffled")
#: The metric panel (:data:`..metrics.EVALUATION_METRICS`).
METRICS = EVALUATION_METRICS
__all__ = ["CONTROLS", "HIGHER_IS_BETTER", "METRICS", "NoisyResult", "evaluate_image", "jnd_maps", "map_names"]


def metric_panel(ref255: np.ndarray, dist255: np.ndarray, jnd_ref: np.ndarray) -> dict[str, float]:
    return score(ref255, dist255, METRICS, jnd_ref)


# ---- one image ---------------------------------------------------------
@dataclass
class NoisyResult:
    jnd: str
    target_psnr: float
    beta: float
    noisy: np.ndarray  # float RGB (or grey) in [0, 255]
    metrics: dict


def map_names(text: str) -> list[str]:
    """Comma-separated map names (:func:`..maps.parse_names`, plus ``shuffled``)."""
    return jnd_sources.parse_names(text, extra=("shuffled",))


def jnd_maps(
    image: np.ndarray,
    names: Iterable[str],
    *,
    model: ResJND | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    should_stop: Callable[[], bool] | None = None,
    given: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The maps to compare, by name: any source of :mod:`..maps` and ``shuffled``, plus
    ``given`` maps (e.g. JND layers from napari) under their own names.

    ``shuffled`` shuffles the first learned model's map when one is among the maps,
    else the first map that is not a control.
    """
    shape = luminance(image).shape
    out = {}
    for name, m in (given or {}).items():
        if np.shape(m) != shape:
            raise ResJNDError(f"JND map {name!r} is {np.shape(m)}, the image is {shape}")
        out[name] = np.asarray(m, np.float32)
    names = [*out, *[n for n in names if n not in out]]
    wanted = [n for n in names if n not in out and n != "shuffled"]
    request = jnd_sources.MapRequest(device=device, precision=precision, should_stop=should_stop, model=model)
    if jnd_sources.needs_weights(wanted) and model is None:
        raise ResJNDError(
            f"the maps {', '.join(n for n in wanted if jnd_sources.source(n).needs_weights)} need a model"
        )
    out.update({n: r.jnd for n, r in jnd_sources.compute(wanted, image, request).items()})
    if "shuffled" in names:
        kinds = {n: jnd_sources.source(n).kind for n in out if jnd_sources.is_source(n)}
        order = sorted((n for n in out if kinds.get(n) != "control"), key=lambda n: kinds.get(n) != "learned")
        if not order:
            raise ResJNDError("'shuffled' needs another map to shuffle")
        out["shuffled"] = shuffled(out[order[0]], seed)
    return {n: out[n] for n in names}


def evaluate_image(
    image: np.ndarray,
    maps: dict[str, np.ndarray],
    targets: Iterable[float],
    *,
    seed: int = 0,
    pspnr_ref: np.ndarray | None = None,
    skipped: list[tuple[str, float, str]] | None = None,
) -> list[NoisyResult]:
    """Inject each map's noise at each target PSNR (one shared sign field) and score it.

    A map whose noise cannot reach a target (zero, or nearly, where the image has
    pixels to change: KLT-JND on pure noise, say) raises ValueError; with
    ``skipped`` given, it is recorded there as (map, target, reason) and left out."""
    img255 = rgb255(image)
    sign = sign_field(img255.shape[:2], seed)
    ref = pspnr_ref if pspnr_ref is not None else jnd_sources.jnd_map("yang2005", image)
    results = []
    for target in targets:
        for name, jnd in maps.items():
            try:
                noisy, beta, _ = noise_at_psnr(img255, jnd, sign, float(target))
            except ValueError as e:
                if skipped is None:
                    raise ResJNDError(f"JND map {name!r}: {e}") from None
                skipped.append((name, float(target), str(e)))
                continue
            results.append(NoisyResult(name, float(target), beta, noisy, metric_panel(img255, noisy, ref)))
    return results


# ---- statistics --------------------------------------------------------
def paired_stats(rows: list[dict], reference: str = jnd_sources.DEFAULT_MODEL, seed: int = 0) -> list[dict]:
    """Per target PSNR, metric and competitor: ResJND's mean paired difference
    (in the metric's 'better' direction), win rate, Wilcoxon signed-rank p and a
    bootstrap 95% interval of the mean difference."""
    from scipy import stats

    out = []
    targets = sorted({r["target_psnr"] for r in rows})
    others = [j for j in dict.fromkeys(r["jnd"] for r in rows) if j != reference]
    for t in targets:
        by = {(r["image"], r["jnd"]): r for r in rows if r["target_psnr"] == t}
        images = sorted({k[0] for k in by})
        for other in others:
            for m in METRICS:
                sign = 1 if HIGHER_IS_BETTER[m] else -1
                d = np.array(
                    [
                        sign * (by[(i, reference)][m] - by[(i, other)][m])
                        for i in images
                        if (i, reference) in by and (i, other) in by
                    ]
                )
                d = d[np.isfinite(d)]
                row = {
                    "target_psnr": t,
                    "metric": m,
                    "versus": other,
                    "n": len(d),
                    "mean_diff": float(d.mean()) if len(d) else math.nan,
                    "win_rate": float(np.mean(d > 0)) if len(d) else math.nan,
                    "wilcoxon_p": math.nan,
                    "ci_low": math.nan,
                    "ci_high": math.nan,
                }
                if len(d) >= 2 and np.any(d != 0):
                    row["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
                    if np.ptp(d) > 0:
                        ci = stats.bootstrap(
                            (d,),
                            np.mean,
                            n_resamples=2000,
                            confidence_level=0.95,
                            random_state=np.random.default_rng(seed),
                        ).confidence_interval
                        row["ci_low"], row["ci_high"] = float(ci.low), float(ci.high)
                out.append(row)
    return out


def markdown_summary(stats_rows: list[dict], reference: str = jnd_sources.DEFAULT_MODEL) -> str:
    lines = [
        f"| target PSNR | metric | {reference} vs | n | mean diff (+ = {reference} better) | win rate | "
        "Wilcoxon p | bootstrap 95% CI |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in stats_rows:
        lines.append(
            f"| {r['target_psnr']:g} | {r['metric']} | {r['versus']} | {r['n']} | {r['mean_diff']:+.4f} | "
            f"{r['win_rate']:.2f} | {r['wilcoxon_p']:.3g} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] |"
        )
    return "\n".join(lines)
