"""The JND-guided coding widget's worker: plain settings in, typed events out, an
:class:`~._work.Outcome` back; no widgets, no layers (testable without a viewer).

A run computes (once per image and settings, then from ``cache``) the JND maps,
the pictures an encoder is given and a short rate-distortion sweep; then it codes
each picture at the slider's quality, and each JND-guided picture again at the
quality whose rate matches the plain codec's (interpolated on the sweep).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from ..core.codecs import codec
from ..core.coding.bdrate import quality_for_rate
from ..core.coding.pipeline import CodedImage, Prefilter, iter_code_image, iter_pictures, scoring
from ..core.coding.prefilter import DEFAULT_FILTER, DEFAULT_LAMBDA, DEFAULT_SIGMA, map_of
from ..core.coding.sweep import PLAIN, RDPoint, encode_point
from ..core.errors import Cancelled
from ..core.events import Event, Status
from ..core.maps import MapRequest, needs_weights
from ..core.weights import DEFAULT_WEIGHTS
from ._models import ModelStore
from ._work import Outcome, ensure_weights, guarded

#: What the widget's sweep scores (the two cheapest that tell most: fidelity and perception).
LIVE_METRICS = ("psnr", "ssimulacra2")


@dataclass(frozen=True)
class CodingJob:
    """What the user asked for: plain values, safe to hand to a worker."""

    image: np.ndarray
    codec: str
    models: tuple[str, ...]
    quality: int
    sweep: tuple[int, ...] = (20, 40, 60, 80, 95)
    weights: str = DEFAULT_WEIGHTS
    lam: float = DEFAULT_LAMBDA
    filter_name: str = DEFAULT_FILTER
    sigma: float = DEFAULT_SIGMA
    metrics: tuple[str, ...] = LIVE_METRICS


@dataclass(frozen=True)
class Decoded:
    """One decoded picture to show: which model guided it, at which quality and rate."""

    jnd: str
    #: "same quality" (the slider's) or "same bpp" (the plain codec's rate at the slider's quality).
    match: str
    quality: int
    bpp: float
    metrics: dict[str, float]
    image: np.ndarray


@dataclass
class CodingResult:
    """The sweep, its BD-rates, and the pictures decoded at the slider's setting."""

    points: list[RDPoint]
    bd: list[dict]
    decoded: list[Decoded] = field(default_factory=list)
    #: The metrics scored (those of the job whose libraries are installed).
    metrics: tuple[str, ...] = LIVE_METRICS
    #: What was left out for a missing library, as one line (None: nothing).
    notice: str | None = None

    @property
    def perceptual(self) -> str:
        """The metric the plot and the status show: SSIMULACRA2 where it ran, else the first."""
        return "ssimulacra2" if "ssimulacra2" in self.metrics else self.metrics[0]


def code(
    store: ModelStore, job: CodingJob, cache: dict, stop: threading.Event
) -> Generator[Event, None, Outcome[CodingResult]]:
    """Worker body: yields typed events, returns an :class:`~._work.Outcome` holding the
    :class:`CodingResult`. ``cache`` (a dict the widget keeps) holds maps, pictures and
    sweeps between runs, so moving the slider only codes. Never raises."""
    return (yield from guarded("JND-guided coding", _code(store, job, cache, stop)))


def _key(job: CodingJob) -> tuple:
    digest = hashlib.blake2b(np.ascontiguousarray(job.image).tobytes(), digest_size=16).hexdigest()
    return (digest, job.image.shape, job.models, job.weights, job.lam, job.filter_name, job.sigma)


def _pictures(
    store: ModelStore, job: CodingJob, base: tuple, cache: dict, stop: threading.Event
) -> Generator[Event, None, dict]:
    key = ("pictures", *base)
    if key not in cache:
        for old in [k for k in cache if k[-len(base) :] != base]:  # another image or settings: keep one set
            del cache[old]
        model = None
        if needs_weights([map_of(n) for n in job.models]):
            yield from ensure_weights(job.weights, stop)
            yield Status("loading weights…")
            model = store.get(job.weights)
        request = MapRequest(weights=job.weights, should_stop=stop.is_set, model=model)
        prefilter = Prefilter(job.lam, job.filter_name, job.sigma)
        cache[key] = yield from iter_pictures(job.image, job.models, request=request, prefilter=prefilter)
    return cache[key]


def _code(
    store: ModelStore, job: CodingJob, cache: dict, stop: threading.Event
) -> Generator[Event, None, CodingResult]:
    c = codec(job.codec)
    base = _key(job)
    pictures = yield from _pictures(store, job, base, cache, stop)
    original = pictures[PLAIN]
    key = ("sweep", job.codec, job.sweep, job.metrics, *base)
    if key not in cache:
        cache[key] = yield from iter_code_image(
            pictures, [job.codec], {job.codec: job.sweep}, metrics=job.metrics, should_stop=stop.is_set
        )
    coded: CodedImage = cache[key]
    yield Status(f"coding at quality {job.quality}…")
    decoded: list[Decoded] = []
    scored = scoring(job.metrics)

    def add(jnd: str, match: str, quality: int) -> Decoded:
        if stop.is_set():
            raise Cancelled("coding cancelled")
        point = encode_point(original, pictures[jnd], jnd, job.codec, quality, scored.metrics, keep_stream=True)
        d = Decoded(jnd, match, quality, point.bpp, point.metrics, c.decode(point.stream or b""))
        decoded.append(d)
        return d

    plain = add(PLAIN, "same quality", job.quality)
    lo, hi = c.quality_range
    for jnd in (j for j in pictures if j != PLAIN):
        add(jnd, "same quality", job.quality)
        curve = [p for p in coded.points if p.jnd == jnd]
        add(jnd, "same bpp", min(hi, max(lo, quality_for_rate(curve, plain.bpp))))
    return CodingResult(coded.points, coded.bd, decoded, scored.metrics, scored.notice())
