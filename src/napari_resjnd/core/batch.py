"""Batch prediction over many files: listing, sharding for cluster job arrays,
skipping finished work, and an I/O pipeline that overlaps reading and writing
with compute. Used by ``resjnd predict``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .images import read_image
from .pairs import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Job:
    """One input file and where its outputs go (``out_dir``/``stem``_*)."""

    source: Path
    out_dir: Path
    stem: str

    @property
    def sidecar(self) -> Path:
        """Written last: its presence marks the job as done."""
        return self.out_dir / f"{self.stem}.json"


def list_jobs(inputs: Iterable[str | Path], out: str | Path, recursive: bool = False) -> list[Job]:
    """Files and folders -> sorted jobs. Files found in a folder keep their
    sub-folder below ``out`` so equal names in different folders do not collide."""
    out = Path(out)
    jobs = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = p.rglob("*") if recursive else p.glob("*")
            for f in found:
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    rel = f.relative_to(p).parent
                    jobs.append(Job(f, out / rel, f.stem))
        else:  # missing files are reported when read
            jobs.append(Job(p, out, p.stem))
    return sorted(set(jobs), key=lambda j: str(j.source))


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" (I from 0 to N-1) -> (I, N)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N, e.g. 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def shard(jobs: list[Job], i: int, n: int) -> list[Job]:
    """Every n-th job from the i-th: the shards are disjoint and cover the list."""
    return jobs[i::n]


@dataclass
class BatchSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed,
                "counts": {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)},
                "seconds": round(self.seconds, 3)}


def run_batch(
    jobs: list[Job],
    compute: Callable,  # (image array, job) -> prediction
    write: Callable,  # (prediction, job) -> None
    *,
    skip_existing: bool = False,
    pipeline: bool = True,
    on_done: Callable[[Job, object | None, Exception | None], None] | None = None,
) -> BatchSummary:
    """Read, compute and write every job; with ``pipeline`` the next file is read
    and the previous results written in threads while the network runs."""
    summary = BatchSummary()
    t0 = time.perf_counter()
    todo = []
    for job in jobs:
        if skip_existing and job.sidecar.exists():
            summary.skipped.append(str(job.source))
        else:
            todo.append(job)

    def fail(job, e):
        summary.failed[str(job.source)] = f"{type(e).__name__}: {e}"
        if on_done:
            on_done(job, None, e)

    def finish(job, fut_or_none):
        try:
            if fut_or_none is not None:
                fut_or_none.result()
            summary.done.append(str(job.source))
            if on_done:
                on_done(job, True, None)
        except (OSError, ValueError) as e:
            fail(job, e)

    if not pipeline:
        for job in todo:
            try:
                write(compute(read_image(job.source), job), job)
            except (OSError, ValueError) as e:
                fail(job, e)
                continue
            finish(job, None)
    else:
        with ThreadPoolExecutor(2, thread_name_prefix="resjnd-read") as readers, \
                ThreadPoolExecutor(1, thread_name_prefix="resjnd-write") as writer:
            reads: list[Future] = [readers.submit(read_image, j.source) for j in todo[:2]]
            writes: list[tuple[Job, Future]] = []
            for k, job in enumerate(todo):
                if k + 2 < len(todo):
                    reads.append(readers.submit(read_image, todo[k + 2].source))
                try:
                    image = reads[k].result()
                    reads[k] = None  # do not keep every image alive
                    pred = compute(image, job)
                except (OSError, ValueError) as e:
                    reads[k] = None
                    fail(job, e)
                    continue
                writes.append((job, writer.submit(write, pred, job)))
                while writes and writes[0][1].done():
                    finish(*writes.pop(0))
            for job, fut in writes:
                finish(job, fut)
    summary.seconds = time.perf_counter() - t0
    return summary


def write_summary(summary: BatchSummary, path: Path, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary.as_dict(), **(extra or {})}, indent=2))
