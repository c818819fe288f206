"""JND-guided noise injection at equal PSNR, a metric panel, and paired statistics.

A JND map is judged by the noise it hides: I' = clip(I + beta * S * JND), with S a
random +-1 field drawn once per image (seeded) and shared by every map compared,
and beta found by bisection so that PSNR(I, I') hits the target within 0.01 dB.
The noise is the same in R, G and B (luminance noise, which the JND models
describe). Images stay in float (no 8-bit rounding) so the PSNR is exact.

Metric settings (all on 8-bit-range data, data_range 255):
- psnr: over R, G, B;
- ssim: scikit-image, on luminance Y (BT.601), Gaussian window sigma 1.5,
  K1 0.01, K2 0.03, population covariance (Wang et al. 2004); higher is better;
- ms_ssim: pytorch-msssim on Y, 11-tap Gaussian sigma 1.5, 5 scales with the
  standard weights (needs a side > 160 px, else NaN); higher is better;
- vifp: pixel-domain VIF (Sheikh & Bovik 2006) on Y, 4 scales, sigma_nsq 2,
  same-size Gaussian filtering with reflected borders (the reference uses "valid");
  higher is better;
- gmsd: Xue et al. 2014 on Y (2 x 2 mean, downsample by 2, Prewitt, c = 170);
  lower is better;
- pspnr: PSNR counting only the error above a reference JND map (by default
  NAMM): e = max(|I' - I| - JND_ref, 0) over R, G, B; higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import ResJNDError
from ..maps import MODELS, classic_jnd, is_classic, luminance, to_y
from ..model import ResJND

CONTROLS = ("uniform", "shuffled")
METRICS = ("psnr", "ssim", "ms_ssim", "vifp", "gmsd", "pspnr")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "vifp": True, "gmsd": False, "pspnr": True}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def sign_field(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=shape)


def inject(image255: np.ndarray, jnd: np.ndarray, sign: np.ndarray, beta: float) -> np.ndarray:
    noise = beta * sign * jnd
    return np.clip(image255 + (noise[..., None] if image255.ndim == 3 else noise), 0, 255)


def noise_at_psnr(
    image255: np.ndarray, jnd: np.ndarray, sign: np.ndarray, target: float, tol: float = 0.01
) -> tuple[np.ndarray, float, float]:
    """(noisy image, beta, achieved PSNR) with |PSNR - target| < tol, by bisection on beta."""
    jnd = np.asarray(jnd, np.float64)
    if not np.isfinite(jnd).all() or jnd.max() <= 0:
        raise ResJNDError("the JND map must be finite and not all zero")
    lo, hi = 0.0, 1.0
    while psnr(image255, inject(image255, jnd, sign, hi)) > target:
        hi *= 2
        if hi > 1e6:
            raise ResJNDError(f"cannot bring the PSNR down to {target} dB with this map")
    for _ in range(200):
        mid = (lo + hi) / 2
        out = inject(image255, jnd, sign, mid)
        p = psnr(image255, out)
        if abs(p - target) < tol:
            return out, mid, p
        lo, hi = (mid, hi) if p > target else (lo, mid)
    raise ResJNDError(f"bisection did not reach {target} dB within {tol} dB (clipping saturates)")


def shuffled(jnd: np.ndarray, seed: int) -> np.ndarray:
    """Same values, positions permuted: the spatial alignment is destroyed."""
    flat = np.asarray(jnd).ravel().copy()
    np.random.default_rng(seed + 1).shuffle(flat)
    return flat.reshape(np.shape(jnd))


# ---- metrics -----------------------------------------------------------
def ssim(y1: np.ndarray, y2: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(y1, y2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    )


def ms_ssim(y1: np.ndarray, y2: np.ndarray) -> float:
    if min(y1.shape) <= 160:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None]
    return float(_ms(t(y1), t(y2), data_range=255, win_size=11, win_sigma=1.5))


def vifp(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """Pixel-domain visual information fidelity (the reference vifvec pixel version)."""
    ref, dist = np.asarray(ref, np.float64), np.asarray(dist, np.float64)
    num = den = 0.0
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        sd = n / 5.0

        def filt(a, sd=sd, n=n):
            return ndimage.gaussian_filter(a, sd, truncate=((n - 1) / 2) / sd, mode="reflect")

        if scale > 1:
            ref, dist = filt(ref)[::2, ::2], filt(dist)[::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        s1 = np.maximum(filt(ref * ref) - mu1**2, 0)
        s2 = np.maximum(filt(dist * dist) - mu2**2, 0)
        s12 = filt(ref * dist) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        g = np.where(s1 < eps, 0, g)
        sv = np.where(s1 < eps, s2, sv)
        s1 = np.where(s1 < eps, 0, s1)
        g = np.where(s2 < eps, 0, g)
        sv = np.where(s2 < eps, 0, sv)
        sv = np.where(g < 0, s2, sv)
        g = np.maximum(g, 0)
        sv = np.maximum(sv, eps)
        num += np.sum(np.log10(1 + g * g * s1 / (sv + sigma_nsq)))
        den += np.sum(np.log10(1 + s1 / sigma_nsq))
    return float(num / den) if den > 0 else math.nan


def gmsd(ref: np.ndarray, dist: np.ndarray, c: float = 170.0) -> float:
    """Gradient magnitude similarity deviation (lower is better)."""

    def prep(a):
        a = ndimage.uniform_filter(np.asarray(a, np.float64), 2, mode="nearest", origin=(-1, -1))
        return a[::2, ::2]

    px = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]) / 3.0

    def gm(a):
        return np.hypot(ndimage.correlate(a, px, mode="nearest"), ndimage.correlate(a, px.T, mode="nearest"))

    m1, m2 = gm(prep(ref)), gm(prep(dist))
    gms = (2 * m1 * m2 + c) / (m1**2 + m2**2 + c)
    return float(np.std(gms))


def pspnr(ref255: np.ndarray, dist255: np.ndarray, jnd_ref: np.ndarray) -> float:
    j = np.asarray(jnd_ref, np.float64)
    e = np.maximum(np.abs(np.asarray(dist255, np.float64) - ref255) - (j[..., None] if ref255.ndim == 3 else j), 0)
    mse = float(np.mean(e**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def metric_panel(ref255: np.ndarray, dist255: np.ndarray, jnd_ref: np.ndarray) -> dict[str, float]:
    y1, y2 = to_y(ref255), to_y(dist255)
    return {
        "psnr": psnr(ref255, dist255),
        "ssim": ssim(y1, y2),
        "ms_ssim": ms_ssim(y1, y2),
        "vifp": vifp(y1, y2),
        "gmsd": gmsd(y1, y2),
        "pspnr": pspnr(ref255, dist255, jnd_ref),
    }


# ---- one image ---------------------------------------------------------
@dataclass
class NoisyResult:
    jnd: str
    target_psnr: float
    beta: float
    noisy: np.ndarray  # float RGB (or grey) in [0, 255]
    metrics: dict


def map_names(text: str) -> list[str]:
    """Comma-separated map names, ``all`` standing for ResJND and every classic model;
    ValueError naming any unknown one."""
    names: list[str] = []
    for n in (t.strip() for t in text.split(",")):
        if n == "all":
            names += [m for m in ("resjnd", *MODELS) if m not in names]
        elif n and n not in names:
            names.append(n)
    unknown = [n for n in names if n != "resjnd" and n not in CONTROLS and not is_classic(n)]
    if unknown or not names:
        known = ", ".join(["all", "resjnd", *MODELS, *CONTROLS])
        raise ResJNDError(f"unknown map {', '.join(unknown) or '(none)'}; known: {known}")
    return names


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
    """The maps to compare, by name: resjnd, the classic models (:mod:`.zoo`), uniform, shuffled,
    plus ``given`` maps (e.g. JND layers from napari) under their own names.

    ``shuffled`` shuffles ResJND's map when it is among the maps, else the first map.
    """
    from ..inference import predict

    shape = luminance(image).shape
    out = {}
    for name, m in (given or {}).items():
        if np.shape(m) != shape:
            raise ResJNDError(f"JND map {name!r} is {np.shape(m)}, the image is {shape}")
        out[name] = np.asarray(m, np.float32)
    names = [*out, *[n for n in names if n not in out]]
    for name in names:
        if name == "resjnd":
            if model is None:
                raise ResJNDError("the 'resjnd' map needs a model")
            out[name] = predict(model, image, device=device, precision=precision, should_stop=should_stop).jnd
        elif is_classic(name):
            out[name] = classic_jnd(name, image)
    if "uniform" in names:
        out["uniform"] = np.ones(shape, np.float32)
    if "shuffled" in names:
        base = out.get("resjnd", next((v for k, v in out.items() if k != "uniform"), None))
        if base is None:
            raise ResJNDError("'shuffled' needs another map to shuffle")
        out["shuffled"] = shuffled(base, seed)
    unknown = set(names) - set(out)
    if unknown:
        raise ResJNDError(f"unknown JND maps {sorted(unknown)}; known: resjnd, {', '.join(MODELS + CONTROLS)}")
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
    from ..images import rgb255

    img255 = rgb255(image)
    sign = sign_field(img255.shape[:2], seed)
    ref = pspnr_ref if pspnr_ref is not None else classic_jnd("yang2005", image)
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
def paired_stats(rows: list[dict], reference: str = "resjnd", seed: int = 0) -> list[dict]:
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


def markdown_summary(stats_rows: list[dict], reference: str = "resjnd") -> str:
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
