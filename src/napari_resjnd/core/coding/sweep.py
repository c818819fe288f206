"""Rate-distortion sweeps: every picture through every codec at its qualities,
decoded and scored against the ORIGINAL, never against the pre-processed picture
that was encoded (a pre-processor that throws detail away pays for it in the
scores). The metrics are :data:`~..metrics.CODING_METRICS`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..codecs import bits_per_pixel, codec
from ..errors import Cancelled, ResJNDError
from ..events import Encoded, Status
from ..metrics import CODING_METRICS, score

METRICS = CODING_METRICS
#: The label of the plain codec's curve (no pre-processing).
PLAIN = "none"


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
    """Encode ``picture`` at ``quality``, decode, score the result against ``original``.
    A codec that refuses the picture (a size over its limit, a library error) is one
    line naming the codec, the quality and the size."""
    c = codec(codec_name)
    if picture.shape != original.shape:
        raise ResJNDError(f"the {jnd} picture is {picture.shape}, the original {original.shape}: they must match")
    t0 = time.perf_counter()
    stream = _coded(c.encode, (picture, quality), codec_name, "encode", quality, original.shape)
    t1 = time.perf_counter()
    decoded = _coded(c.decode, (stream,), codec_name, "decode", quality, original.shape)
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


def _coded(run: Callable[..., Any], args: tuple, name: str, what: str, quality: int, shape: tuple[int, ...]) -> Any:
    """``run(*args)`` of a codec's library; what it raises on an input (a size over its
    limit, a stream it cannot read) becomes one line naming the codec."""
    try:
        return run(*args)
    except ResJNDError:
        raise
    except Exception as e:  # the library's own error types: its refusal of this input
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ResJNDError(
            f"{name} cannot {what} this {shape[1]} x {shape[0]} image at quality {quality} ({type(e).__name__}: {why})"
        ) from None


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
    return ProcessPoolExecutor(max(1, workers), mp_context=ctx, initializer=_encoder_process)


def _encoder_process() -> None:
    """Each encoder process computes on one thread (MS-SSIM runs in torch): the
    processes, not their threads, share the CPUs. Ctrl-C is left to the parent,
    which stops the pool (a terminal sends it to every process of the group)."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


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
