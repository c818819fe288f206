"""Rate-distortion sweeps, their metrics, and the Bjontegaard delta rate.

Every decoded image is scored against the ORIGINAL, never against the
pre-processed picture that was encoded: a pre-processor that throws detail away
pays for it in the scores. Metrics (higher is better except GMSD):

- psnr: over R, G, B (as :func:`.evaluate.psnr`);
- ms_ssim, vifp, gmsd: on luminance Y, as :mod:`.evaluate` computes them
  (MS-SSIM needs a side above 160 px, else NaN);
- ssimulacra2: the ``ssimulacra2`` package (a NumPy port of libjxl's tool), on
  sRGB; 100 for identical images.

BD-rate (Bjontegaard, VCEG-M33): the mean difference of log10(bpp) between two
curves over the metric interval where both exist, as a percentage of bits:
negative means the JND-guided curve needs fewer bits for the same score. The
curves are interpolated piecewise-cubically (PCHIP, the default, monotone and
without overshoot) or with VCEG-M33's single cubic polynomial (``cubic``), by the
``bjontegaard`` package. Curves whose metric ranges do not overlap give NaN and
say so; nothing is extrapolated.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from ..codecs import EXTRA, bits_per_pixel, codec
from ..errors import Cancelled, ResJNDError
from ..events import Encoded, Status
from ..maps import to_y

log = logging.getLogger(__name__)

METRICS = ("psnr", "ms_ssim", "ssimulacra2", "vifp", "gmsd")
HIGHER_IS_BETTER = {"psnr": True, "ms_ssim": True, "ssimulacra2": True, "vifp": True, "gmsd": False}
#: The label of the plain codec's curve (no pre-processing).
PLAIN = "none"
INTERPOLATIONS = {"pchip": "piecewise cubic Hermite (PCHIP)", "cubic": "cubic polynomial (VCEG-M33)"}


# ---- metrics --------------------------------------------------------------
def ssimulacra2(original: np.ndarray, decoded: np.ndarray) -> float:
    """SSIMULACRA2 of two H x W x 3 uint8 images (100: identical)."""
    try:
        from ssimulacra2 import compute_ssimulacra2
    except ImportError:
        raise ResJNDError(f"the ssimulacra2 metric needs ssimulacra2: pip install ssimulacra2 (or '{EXTRA}')") from None
    from PIL import Image

    def ppm(a: np.ndarray) -> io.BytesIO:  # the package reads files; PPM is lossless and fast
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PPM")
        buf.seek(0)
        return buf

    return float(compute_ssimulacra2(ppm(original), ppm(decoded)))


def score(original: np.ndarray, decoded: np.ndarray, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """The metrics of ``decoded`` against ``original`` (both H x W x 3 uint8)."""
    from ..research import evaluate as ev

    ref, dist = original.astype(np.float64), decoded.astype(np.float64)
    y1, y2 = to_y(ref), to_y(dist)
    compute: dict[str, Callable[[], float]] = {
        "psnr": lambda: ev.psnr(ref, dist),
        "ms_ssim": lambda: ev.ms_ssim(y1, y2),
        "ssimulacra2": lambda: ssimulacra2(original, decoded),
        "vifp": lambda: ev.vifp(y1, y2),
        "gmsd": lambda: ev.gmsd(y1, y2),
    }
    return {m: compute[m]() for m in metrics}


# ---- one point of a curve -----------------------------------------------------
@dataclass
class RDPoint:
    """One encoding: which picture, codec and quality, its size and its scores."""

    jnd: str
    codec: str
    quality: int
    #: Length of the stream in bytes.
    size: int
    bpp: float
    metrics: dict[str, float]
    #: Seconds spent: encode, decode, and each metric.
    seconds: dict[str, float] = field(default_factory=dict)
    #: The stream itself (kept only when asked).
    stream: bytes | None = None


def encode_point(
    original: np.ndarray,
    picture: np.ndarray,
    jnd: str,
    codec_name: str,
    quality: int,
    metrics: Sequence[str] = METRICS,
    keep_stream: bool = False,
) -> RDPoint:
    """Encode ``picture`` at ``quality``, decode, score the result against ``original``."""
    c = codec(codec_name)
    t0 = time.perf_counter()
    stream = c.encode(picture, quality)
    t1 = time.perf_counter()
    decoded = c.decode(stream)
    t2 = time.perf_counter()
    if decoded.shape != original.shape:
        raise ResJNDError(f"{codec_name} decoded {decoded.shape}, the original is {original.shape}")
    seconds = {"encode": t1 - t0, "decode": t2 - t1}
    scores: dict[str, float] = {}
    for m in metrics:
        t = time.perf_counter()
        scores.update(score(original, decoded, (m,)))
        seconds[m] = time.perf_counter() - t
    return RDPoint(
        jnd,
        codec_name,
        quality,
        len(stream),
        bits_per_pixel(stream, original.shape),
        scores,
        seconds,
        stream if keep_stream else None,
    )


def iter_sweep(
    original: np.ndarray,
    pictures: dict[str, np.ndarray],
    codecs: Sequence[str],
    qualities: dict[str, Sequence[int]],
    *,
    metrics: Sequence[str] = METRICS,
    workers: int = 0,
    keep_streams: bool = False,
    should_stop: Callable[[], bool] | None = None,
    pool: Executor | None = None,
) -> Generator[Status | Encoded, None, list[RDPoint]]:
    """Every picture (``none``: the original; others: JND-guided) through every codec at
    its qualities, scored against ``original``. ``workers`` > 1 encodes in that many
    processes (or in ``pool``, kept by a caller that sweeps many images); yields
    :class:`~.events.Encoded` per point, returns the points in order."""
    tasks = [(name, c, q) for c in codecs for name in pictures for q in qualities[c]]
    yield Status(f"encoding {len(tasks)} streams…")
    if pool is not None:
        return (yield from _collect(original, pictures, tasks, metrics, pool, keep_streams, should_stop))
    if workers <= 1:
        points = []
        for i, (name, c, q) in enumerate(tasks):
            if should_stop is not None and should_stop():
                raise Cancelled("sweep cancelled")
            points.append(encode_point(original, pictures[name], name, c, q, metrics, keep_streams))
            yield Encoded(i + 1, len(tasks), c, name, q)
        return points
    with process_pool(min(workers, len(tasks))) as own:
        return (yield from _collect(original, pictures, tasks, metrics, own, keep_streams, should_stop))


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Encoder processes; forkserver (spawn on Windows): the parent may hold threads
    (torch, Qt) that a fork would copy half-way."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
    return ProcessPoolExecutor(max(1, workers), mp_context=ctx, initializer=_one_thread)


def _one_thread() -> None:
    """Each encoder process computes on one thread (MS-SSIM runs in torch): the
    processes, not their threads, share the CPUs."""
    import torch

    torch.set_num_threads(1)


def check_libraries() -> None:
    """One line naming the pip command when a metric's or BD-rate's library is missing."""
    _missing_bjontegaard()
    try:
        import ssimulacra2  # noqa: F401
    except ImportError:
        raise ResJNDError(f"the ssimulacra2 metric needs ssimulacra2: pip install ssimulacra2 (or '{EXTRA}')") from None


def _collect(
    original: np.ndarray,
    pictures: dict[str, np.ndarray],
    tasks: list[tuple[str, str, int]],
    metrics: Sequence[str],
    pool: Executor,
    keep_streams: bool,
    should_stop: Callable[[], bool] | None,
) -> Generator[Encoded, None, list[RDPoint]]:
    futures: list[Future[RDPoint]] = [
        pool.submit(encode_point, original, pictures[n], n, c, q, tuple(metrics), keep_streams) for n, c, q in tasks
    ]
    try:
        for i, (fut, (n, c, q)) in enumerate(zip(futures, tasks)):
            while True:  # wait in short steps so that a stop request is seen
                if should_stop is not None and should_stop():
                    raise Cancelled("sweep cancelled")
                try:
                    fut.result(timeout=0.2)
                    break
                except FutureTimeout:  # not the built-in TimeoutError before Python 3.11
                    continue
            yield Encoded(i + 1, len(tasks), c, n, q)
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return [f.result() for f in futures]


# ---- BD-rate ------------------------------------------------------------------
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
        raise ResJNDError(f"BD-rate needs bjontegaard: pip install bjontegaard (or '{EXTRA}')") from None


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
