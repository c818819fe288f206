"""Observers' sessions aggregated: a threshold per observer and condition, a table
per JND model, paired comparisons between models, a plot, and how well each
model's predicted visibility ranks the measured thresholds.

The threshold is a PSNR: the noise a model's map shapes can be as strong as this
before it is seen (81.6 % correct in 2AFC, :mod:`.psychometric`). A lower
threshold PSNR means the map hides more noise. Thresholds beyond the stimuli shown
are flagged censored (bounds, not measurements) and counted in the table.

Paired comparisons average each image's thresholds over its observers first (the
images are the independent units; observers of one image are not), then test the
per-image differences with Wilcoxon's signed-rank test, and correct the p-values of
all pairs for multiple comparisons by Holm's step-down method (Holm 1979).

Rank agreement uses each model's ``detection_ratio`` (the neighbourhood ratio
behind ``p_detect``, in thresholds), which never saturates: a p_detect of 1.000 for
every condition would leave nothing to rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import combinations

import numpy as np

from .session import ObserverSession


def thresholds(sessions: Sequence[ObserverSession]) -> list[dict]:
    """One row per observer and condition: image, model, threshold and its 95 % CI
    (censored or not), and the noise scale beta at the threshold (see :func:`beta_at`)."""
    rows = []
    for s in sessions:
        by_key = {c.key: c for c in s.conditions}
        for key, f in s.fits().items():
            c = by_key[key]
            beta = beta_at(f.threshold, [t for t in s.trials if t["condition"] == key])
            rows.append({"observer": s.observer, "image": c.image, "model": c.model, **f.as_dict(), "beta": beta})
    return rows


def beta_at(threshold: float, trials: list[dict]) -> float:
    """The noise scale beta that gives ``threshold`` dB, from the trials' (PSNR, beta):
    the noise amplitude is beta times the map, so beta scales as 10 ** (-PSNR / 20)
    (exact without clipping). NaN when no trial recorded a beta (simulated runs).

    The model's map times this scale is the noise the observer just sees. (The
    visibility model's alpha is fitted on the trials as shown instead, with their
    rounding and clipping: :mod:`.calibrate`.)"""
    est = [t["beta"] * 10 ** ((t["psnr"] - threshold) / 20) for t in trials if t.get("beta")]
    return float(np.median(est)) if est else math.nan


def model_table(rows: list[dict]) -> list[dict]:
    """Per model: how many thresholds (and how many censored), their mean and median
    PSNR, the mean CI width, and the noise scale at threshold (geometric mean)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        t = np.array([r["threshold_psnr"] for r in rows if r["model"] == model])
        w = np.array([r["ci_high"] - r["ci_low"] for r in rows if r["model"] == model])
        b = np.array([r.get("beta", math.nan) for r in rows if r["model"] == model], np.float64)
        b = b[np.isfinite(b) & (b > 0)]
        out.append(
            {
                "model": model,
                "n": int(t.size),
                "mean_threshold_psnr": float(t.mean()),
                "median_threshold_psnr": float(np.median(t)),
                "censored": sum(1 for r in rows if r["model"] == model and r.get("censored")),
                "mean_ci_width_db": float(w.mean()),
                # geometric mean of the noise scale at threshold (how strong the map's own noise can be)
                "noise_scale_at_threshold": float(np.exp(np.log(b).mean())) if b.size else math.nan,
            }
        )
    return out


def per_image(rows: list[dict]) -> dict[tuple[str, str], float]:
    """(image, model) -> the mean threshold over the observers who saw it."""
    cells: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        cells.setdefault((r["image"], r["model"]), []).append(r["threshold_psnr"])
    return {k: float(np.mean(v)) for k, v in cells.items()}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of the finite p-values (NaN stays NaN)."""
    finite = [(p, i) for i, p in enumerate(pvalues) if math.isfinite(p)]
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        out[i] = running
    return out


def paired(rows: list[dict]) -> list[dict]:
    """Every pair of models over the images both were measured on (thresholds averaged
    over observers per image first): mean difference a - b (dB; negative: a hides
    more noise), how often a is lower, Wilcoxon signed-rank p and Holm's adjusted p."""
    from scipy import stats

    by = per_image(rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    out = []
    for a, b in combinations(models, 2):
        d = np.array([by[(i, a)] - by[(i, b)] for (i, m) in by if m == a and (i, b) in by])
        p = math.nan
        if d.size >= 2 and np.any(d != 0):
            p = float(stats.wilcoxon(d).pvalue)
        out.append(
            {
                "a": a,
                "b": b,
                "n_images": int(d.size),
                "mean_diff_db": float(d.mean()) if d.size else math.nan,
                "a_lower_rate": float(np.mean(d < 0)) if d.size else math.nan,
                "wilcoxon_p": p,
            }
        )
    for row, adjusted in zip(out, holm([r["wilcoxon_p"] for r in out])):
        row["holm_p"] = adjusted
    return out


def rank_agreement(
    rows: list[dict],
    predicted: Callable[[str, str, str, float], float],
    models: Sequence[str],
) -> list[dict]:
    """Per predicting model m: Spearman's rho between m's predicted visibility
    (``detection_ratio``, which never saturates) of each condition's noise at one
    reference PSNR (the median threshold) and the measured threshold PSNRs, over the
    conditions (images x noise models, observers averaged). A map that predicts
    visibility well gives a positive rho: noise it calls more visible is seen at a
    higher PSNR. ``predicted(model, image, noise_model, psnr)``."""
    from scipy import stats

    measured = per_image(rows)
    reference = float(np.median(list(measured.values())))
    out = []
    for m in models:
        pred = [predicted(m, image, noise, reference) for image, noise in measured]
        rho = math.nan
        if len(pred) >= 3 and np.ptp(pred) > 0:
            rho = float(stats.spearmanr(pred, list(measured.values())).statistic)
        out.append(
            {
                "model": m,
                "conditions": len(pred),
                "reference_psnr": reference,
                "ranked_by": "detection_ratio",
                "spearman_rho": rho,
            }
        )
    return out


def markdown(
    table: list[dict], pairs: list[dict], ranks: list[dict] | None = None, calibrations: list[dict] | None = None
) -> str:
    lines = [
        "| model | n | censored | mean threshold PSNR (dB) | median | mean 95 % CI width (dB) "
        "| noise scale at threshold |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['model']} | {r['n']} | {r['censored']} | {r['mean_threshold_psnr']:.2f} | "
        f"{r['median_threshold_psnr']:.2f} | {r['mean_ci_width_db']:.2f} | {r['noise_scale_at_threshold']:.3g} |"
        for r in table
    ]
    lines += [
        "",
        "| a | b | images | mean a - b (dB) | a lower | Wilcoxon p | Holm p |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['a']} | {r['b']} | {r['n_images']} | {r['mean_diff_db']:+.2f} | {r['a_lower_rate']:.2f} | "
        f"{r['wilcoxon_p']:.3g} | {r['holm_p']:.3g} |"
        for r in pairs
    ]
    if ranks:
        lines += [
            "",
            "| model | conditions | detection ratio at (dB) | Spearman rho |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {r['model']} | {r['conditions']} | {r['reference_psnr']:.2f} | {r['spearman_rho']:.3f} |" for r in ranks
        ]
    if calibrations:
        lines += [
            "",
            "| model | procedure | ppd | trials | alpha | beta | log-likelihood |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {c['model']} | {c['procedure']} | {c['viewing']['ppd']:.1f} | {c['trials']} | {c['alpha']:.3g} | "
            f"{c['beta']:g}{'' if c['beta_fitted'] else ' (fixed)'} | {c['log_likelihood']:.2f} |"
            for c in calibrations
        ]
    return "\n".join(lines)


def threshold_plot(rows: list[dict], path: str, fmt: str = "png") -> None:
    """Each threshold with its CI, by model (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(models), 3.6))
    for k, m in enumerate(models):
        mine = [r for r in rows if r["model"] == m]
        x = k + np.linspace(-0.25, 0.25, len(mine)) if len(mine) > 1 else np.array([k])
        t = np.array([r["threshold_psnr"] for r in mine])
        lo = t - np.array([r["ci_low"] for r in mine])
        hi = np.array([r["ci_high"] for r in mine]) - t
        ax.errorbar(x, t, yerr=[lo, hi], fmt="o", capsize=2)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right")
    ax.set_ylabel("threshold PSNR (dB)")
    ax.set_title("PSNR at threshold (lower: more noise hidden)")
    fig.tight_layout()
    fig.savefig(path, format=fmt)
    plt.close(fig)


def summary(sessions: Sequence[ObserverSession]) -> dict:
    rows = thresholds(sessions)
    return {"thresholds": rows, "models": model_table(rows), "paired": paired(rows)}


def image_lookup(images: Mapping[str, np.ndarray]) -> Callable[[str], np.ndarray]:
    """Find a condition's image by its name or file stem."""

    def get(name: str) -> np.ndarray:
        from pathlib import Path

        for key in (name, Path(name).stem, Path(name).name):
            if key in images:
                return images[key]
        raise KeyError(name)

    return get
