"""Batch prediction over many files: listing, sharding for cluster job arrays,
skipping finished work, and an I/O pipeline that overlaps reading and writing
with compute. Used by ``resjnd predict``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ResJNDError
from .files import write_json
from .images import IMAGE_SUFFIXES, ImageFile, load_image


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

    def complete(self) -> bool:
        """The sidecar and every file it lists are there (a set someone thinned out,
        or one written by another tool under the same name, is not complete)."""
        try:
            meta = json.loads(self.sidecar.read_text())
            files = meta["files"] if "files" in meta else [f"{self.stem}_jnd.tif"]  # sets from before the list
            return all((self.out_dir / str(name)).is_file() for name in files) and bool(files)
        except (OSError, ValueError, TypeError, KeyError):
            return False


#: Names ``resjnd predict`` keeps for itself in ``--out``: an input with such a stem
#: is named after its whole file name (``summary.png.json``).
RESERVED_STEMS = ("summary",)

#: Suffixes of the files a prediction writes: never taken for inputs in ``--out``.
OUTPUT_SUFFIXES = ("_jnd.tif", "_jnd.png", "_cpl.png", "_cpl.tif")


def _reserved(stem: str) -> bool:
    s = stem.casefold()
    return s in RESERVED_STEMS or s.startswith("summary-shard-")


def _resolved(p: Path) -> Path:
    """``p`` resolved, or as given when a symlink loop makes that impossible (it is
    then reported when read, and the other inputs go on)."""
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def _folder_images(p: Path, out: Path, recursive: bool, skipped: list[Path] | None = None) -> list[Path]:
    """Image files in folder ``p``, leaving out what an earlier run wrote into ``out``
    when ``out`` lies inside ``p``, and (looking into sub-folders) every folder that
    holds an earlier resjnd run's results (their streams and maps are not inputs):
    those are added to ``skipped``."""
    try:
        next(os.scandir(p), None)
    except PermissionError:
        raise ResJNDError(f"{p}: permission denied (the folder cannot be listed)") from None
    except OSError as e:
        raise ResJNDError(f"{p}: cannot list the folder ({e.strerror or e})") from None
    out_r, p_r = _resolved(out), _resolved(p)
    out_inside = out_r == p_r or p_r in out_r.parents
    found = p.rglob("*") if recursive else p.glob("*")
    runs: dict[Path, bool] = {}
    images = []
    for f in found:
        broken = f.is_symlink() and not f.exists()  # a loop or a dangling link: reported, not skipped silently
        if not (f.suffix.lower() in IMAGE_SUFFIXES and (f.is_file() or broken)):
            continue
        parent = _resolved(f.parent) if out_inside else None
        in_out = parent is not None and (parent == out_r or out_r in parent.parents)
        if in_out and (out_r != p_r or f.name.endswith(OUTPUT_SUFFIXES)):
            continue  # outputs of an earlier run: mapping them would map maps
        run = _run_folder(f.parent, p, runs) if recursive else None
        if run is not None:
            if skipped is not None and run not in skipped:
                skipped.append(run)
            continue
        images.append(f)
    return images


#: Files that mark a folder as an earlier run's results: ``resjnd compress``'s record and table.
RUN_MARKERS = ("codecs.json", "rd.csv")


def _run_folder(folder: Path, root: Path, seen: dict[Path, bool]) -> Path | None:
    """The folder between ``root`` (excluded) and ``folder`` that holds an earlier
    ``resjnd compress`` run's results, or None."""
    for d in [folder, *folder.parents]:
        if d == root or root not in d.parents:
            return None
        if d not in seen:
            seen[d] = all((d / m).is_file() for m in RUN_MARKERS)
        if seen[d]:
            return d
    return None


def _pending(read: Future[ImageFile] | None) -> Future[ImageFile]:
    """A read still to collect (each is collected once, then dropped)."""
    assert read is not None
    return read


def list_jobs(
    inputs: Iterable[str | Path], out: str | Path, recursive: bool = False, skipped: list[Path] | None = None
) -> list[Job]:
    """Files and folders -> sorted jobs whose outputs never collide.

    Files found in a folder keep their sub-folder below ``out``. Outputs are named
    after the file's stem; when inputs bound for the same folder share a stem (case
    ignored: ``x.png`` and ``X.jpg``), each of them is named after its whole file
    name instead (``x.png_jnd.png``). Inputs whose whole names still collide (the
    same name in two folders given as files) are refused before any work. The rule
    is applied to the whole list before sharding, so every shard agrees, and
    ``resjnd predict`` and ``resjnd compress`` name an image alike (a map in
    ``--jnd-dir`` is found under the same sub-folder and stem). Sub-folders holding
    an earlier run's results are left out and added to ``skipped``.
    """
    out = Path(out)
    jobs = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            images = _folder_images(p, out, recursive, skipped)
            if not images:
                raise ResJNDError(
                    f"{p}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                    + ("" if recursive else "; add --recursive to look into sub-folders")
                )
            for f in images:
                jobs.append(Job(f, out / f.relative_to(p).parent, f.stem))
        else:  # missing files are reported when read
            jobs.append(Job(p, out, p.stem))
    jobs = sorted({_resolved(j.source): j for j in jobs}.values(), key=lambda j: str(j.source))
    return _unique_names(jobs)


def _unique_names(jobs: list[Job]) -> list[Job]:
    def key(job, stem):
        return str(job.out_dir).casefold(), stem.casefold()

    def groups(named):
        found: dict = {}
        for job in named:
            found.setdefault(key(job, job.stem), []).append(job)
        return found

    renamed = {id(j): j for j in jobs}
    for clash in groups(jobs).values():
        if len(clash) > 1 or _reserved(clash[0].stem):
            for j in clash:
                renamed[id(j)] = Job(j.source, j.out_dir, j.source.name)
    out = [renamed[id(j)] for j in jobs]
    for clash in groups(out).values():
        if len(clash) > 1:
            names = " and ".join(str(j.source) for j in clash)
            raise ResJNDError(
                f"{names} would write the same files in {clash[0].out_dir}: give their folders "
                "(sub-folders are kept below --out) or predict them into different --out folders"
            )
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" (I from 0 to N-1) -> (I, N)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ResJNDError(f"--shard takes I/N, e.g. 0/4, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ResJNDError(f"--shard I/N needs 0 <= I < N, got {text!r}")
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
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "counts": {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)},
            "seconds": round(self.seconds, 3),
        }


def run_batch(
    jobs: list[Job],
    compute: Callable,  # (ImageFile, job) -> prediction
    write: Callable,  # (prediction, job) -> None
    *,
    skip_existing: bool = False,
    pipeline: bool = True,
    on_done: Callable[[Job, object | None, Exception | None], None] | None = None,
) -> BatchSummary:
    """Read, compute and write every job; with ``pipeline`` the next file is read
    and the previous results written in threads while the network runs. A file
    that fails (unreadable, refused, a full disk) is recorded with its reason and
    the batch goes on."""
    summary = BatchSummary()
    t0 = time.perf_counter()
    todo = []
    for job in jobs:
        if skip_existing and job.complete():
            summary.skipped.append(str(job.source))
        else:
            todo.append(job)

    def fail(job, e):
        summary.failed[str(job.source)] = str(e) if isinstance(e, ResJNDError) else f"{type(e).__name__}: {e}"
        if on_done:
            on_done(job, None, e)

    def finish(job, fut_or_none):
        try:
            if fut_or_none is not None:
                fut_or_none.result()
            summary.done.append(str(job.source))
            if on_done:
                on_done(job, True, None)
        except (OSError, ResJNDError, MemoryError) as e:
            fail(job, e)

    if not pipeline:
        for job in todo:
            try:
                write(compute(load_image(job.source), job), job)
            except (OSError, ResJNDError, MemoryError) as e:
                fail(job, e)
                continue
            finish(job, None)
    else:
        with (
            ThreadPoolExecutor(2, thread_name_prefix="resjnd-read") as readers,
            ThreadPoolExecutor(1, thread_name_prefix="resjnd-write") as writer,
        ):
            reads: list[Future[ImageFile] | None] = [readers.submit(load_image, j.source) for j in todo[:2]]
            writes: list[tuple[Job, Future]] = []
            for k, job in enumerate(todo):
                if k + 2 < len(todo):
                    reads.append(readers.submit(load_image, todo[k + 2].source))
                try:
                    image = _pending(reads[k]).result()
                    reads[k] = None  # do not keep every image alive
                    pred = compute(image, job)
                except (OSError, ResJNDError, MemoryError) as e:
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
    write_json(path, {**summary.as_dict(), **(extra or {})})
