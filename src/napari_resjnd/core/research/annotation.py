"""CPL annotation: a bisection staircase over a ladder, sessions saved after every
answer, observers merged, and the target (CPL) image assembled from the result.

The critical level of a patch is the last level judged "same" as the original.
The staircase is a bisection: level 0 (the original) is known "same"; each trial
shows the middle of the remaining range; "same" raises the lower bound, "different"
lowers the upper one. With K levels it needs about log2(K) trials.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ResJNDError
from ..files import atomic_write, atomic_write_all, json_text, png_writer
from ..images import image_sha256
from ..training.pairs import Box
from .ladders import make_ladder


@dataclass
class Bisection:
    """Adaptive choice of the next level; ``critical`` once ``done``."""

    levels: int
    lo: int = 0  # highest level known "same"
    hi: int = -1  # highest level still possible

    def __post_init__(self):
        if self.hi < 0:
            self.hi = self.levels - 1

    @property
    def done(self) -> bool:
        return self.lo >= self.hi

    @property
    def critical(self) -> int | None:
        return self.lo if self.done else None

    def next_level(self) -> int:
        return (self.lo + self.hi + 1) // 2

    def answer(self, level: int, same: bool) -> None:
        if same:
            self.lo = max(self.lo, level)
        else:
            self.hi = min(self.hi, level - 1)


@dataclass
class PatchRecord:
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 in image pixels
    ladder_psnr: list[float] = field(default_factory=list)
    ladder_params: list = field(default_factory=list)
    trials: list[dict] = field(default_factory=list)
    critical: int | None = None


@dataclass
class AnnotationSession:
    """One observer judging the patches of one image; saved after every answer."""

    observer: str
    image: str
    image_shape: tuple[int, ...]
    generator: str
    levels: int
    seed: int = 0
    mode: str = "flicker"
    patches: list[PatchRecord] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    #: :func:`image_sha256` of the judged image: sessions merge by content, not by name.
    image_sha256: str | None = None

    def staircase(self, i: int) -> Bisection:
        """Patch i's staircase, rebuilt from its recorded trials (how a session resumes)."""
        s = Bisection(self.levels)
        for t in self.patches[i].trials:
            s.answer(t["level"], t["same"])
        return s

    def next_patch(self) -> int | None:
        return next((i for i, p in enumerate(self.patches) if p.critical is None), None)

    def record(self, i: int, level: int, same: bool, **timing: float) -> None:
        p = self.patches[i]
        p.trials.append({"level": level, "same": bool(same), **timing})
        s = self.staircase(i)
        if s.done:
            p.critical = s.critical

    def save(self, path: str | Path) -> None:
        """Atomically: a temporary file, then rename."""
        text = json_text(asdict(self), indent=1)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> AnnotationSession:
        """Read and check a session file; a damaged or foreign file is a one-line
        ``ValueError`` naming it."""
        try:
            d = json.loads(Path(path).read_text())
            d["patches"] = [PatchRecord(**{**p, "box": tuple(int(v) for v in p["box"])}) for p in d["patches"]]
            d["image_shape"] = tuple(int(v) for v in d["image_shape"])
            _check_field_types(d)
            session = cls(**d)
        except OSError as e:
            raise ResJNDError(f"{path}: cannot read it ({e.strerror or e})") from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            why = f"missing {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
            raise ResJNDError(f"{path}: not a CPL annotation session ({type(e).__name__}: {why})") from None
        session.check(path)
        return session

    def check(self, where: object = "session") -> None:
        """Values in range: levels, boxes inside the image, trial and critical levels."""
        if not isinstance(self.levels, int) or self.levels < 2:
            raise ResJNDError(f"{where}: levels must be a whole number of at least 2, got {self.levels!r}")
        if len(self.image_shape) < 2:
            raise ResJNDError(f"{where}: image_shape {self.image_shape} is not an image shape")
        h, w = self.image_shape[:2]
        for i, p in enumerate(self.patches):
            y0, y1, x0, x1 = p.box
            if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
                raise ResJNDError(f"{where}: patch {i}'s box {p.box} is not inside the {w} x {h} image")
            levels = [t.get("level") for t in p.trials] + ([] if p.critical is None else [p.critical])
            bad = [v for v in levels if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < self.levels]
            if bad:
                raise ResJNDError(f"{where}: patch {i} has levels {bad} outside 0..{self.levels - 1}")

    def unfinished(self) -> list[int]:
        return [i for i, p in enumerate(self.patches) if p.critical is None]


#: The JSON types of a session's fields (a hand-edited file may hold anything).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "observer": (str,),
    "image": (str,),
    "generator": (str,),
    "levels": (int,),
    "seed": (int,),
    "mode": (str,),
    "image_sha256": (str, type(None)),
}


def _check_field_types(d: dict) -> None:
    """TypeError naming the first field of the wrong type (read by :meth:`AnnotationSession.load`)."""
    for key, types in _FIELD_TYPES.items():
        if key in d and (not isinstance(d[key], types) or isinstance(d[key], bool)):
            raise TypeError(f"{key!r} must be {types[0].__name__}, not {type(d[key]).__name__}")
    for i, p in enumerate(d["patches"]):
        if not isinstance(p.trials, list) or not all(isinstance(t, dict) and "same" in t for t in p.trials):
            raise TypeError(f"patch {i}'s trials must be a list of {{'level': L, 'same': true/false}}")


def check_same_image(
    sessions: list[AnnotationSession],
    names: list[str],
    image: np.ndarray,
    image_name: str,
    read: Callable[[str], np.ndarray] | None = None,
) -> None:
    """Refuse sessions that are unfinished or of another image than ``image`` (by
    content hash and shape). A session without a recorded hash is checked against
    its own image file, read with ``read``."""
    want = image_sha256(image)
    for s, name in zip(sessions, names):
        todo = s.unfinished()
        if todo:
            raise ResJNDError(
                f"{name}: {s.observer}'s session is unfinished (patches {todo} have no critical level "
                "yet); finish it in napari (Annotate CPL, Start / resume) or leave it out"
            )
        if tuple(s.image_shape) != tuple(np.shape(image)):
            raise ResJNDError(f"{name}: the session's image is {s.image_shape}, {image_name} is {np.shape(image)}")
        got = s.image_sha256
        if got is None:
            try:
                got = image_sha256(read(s.image)) if read else None
            except ValueError:
                got = None
            if got is None:
                raise ResJNDError(
                    f"{name}: the session records no image hash and its image {s.image!r} cannot be read to check it"
                )
        if got != want:
            raise ResJNDError(
                f"{name}: the session judged another image than {image_name} (same shape, different pixels)"
            )


def check_mergeable(sessions: list[AnnotationSession], names: list[str]) -> None:
    """Refuse what would make :func:`merge` count wrongly: a session without patches,
    one that judges the same box twice (one of its levels would be dropped), and the
    same session given twice (under one name or as a copy), which would count as
    two observers in full agreement."""
    seen: dict[str, str] = {}
    for s, name in zip(sessions, names):
        if not s.patches:
            raise ResJNDError(f"{name}: {s.observer}'s session has no patches to merge")
        boxes = [p.box for p in s.patches]
        for j, box in enumerate(boxes):
            if box in boxes[:j]:
                raise ResJNDError(
                    f"{name}: patches {boxes.index(box)} and {j} judge the same box {box}; "
                    "keep one of them (a box is merged once per observer)"
                )
        key = json.dumps(asdict(s), sort_keys=True, default=str)
        if key in seen:
            raise ResJNDError(
                f"{seen[key]} and {name} are the same session ({s.observer}, the same answers); "
                "give each observer's session once"
            )
        seen[key] = name


def ladders_for(image: np.ndarray, session: AnnotationSession, jnd: np.ndarray | None = None) -> list:
    """Each patch's ladder, regenerated deterministically from the session's settings."""
    out = []
    for i, p in enumerate(session.patches):
        y0, y1, x0, x1 = p.box
        sub = None if jnd is None else jnd[y0:y1, x0:x1]
        out.append(make_ladder(image[y0:y1, x0:x1], session.generator, session.levels, seed=session.seed + i, jnd=sub))
    return out


def assemble_target(image: np.ndarray, boxes: Sequence[Box], versions: Sequence[np.ndarray]) -> np.ndarray:
    """The pristine image (float, [0, 255]) with each box replaced by its version."""
    from ..images import rgb255

    out = rgb255(image).copy()
    for (y0, y1, x0, x1), v in zip(boxes, versions):
        out[y0:y1, x0:x1] = v
    return out


def merge(sessions: list[AnnotationSession]) -> dict:
    """Median critical level per patch over observers, with agreement statistics."""
    if not sessions:
        raise ResJNDError("no sessions to merge")
    ref = sessions[0]
    for s in sessions[1:]:
        if (s.image_shape, s.generator, s.levels, s.seed) != (ref.image_shape, ref.generator, ref.levels, ref.seed):
            raise ResJNDError(f"session of {s.observer!r} used other settings (image, generator, levels or seed)")
    for s in sessions[1:]:
        if sorted(p.box for p in s.patches) != sorted(p.box for p in ref.patches):
            raise ResJNDError(f"session of {s.observer!r} judged other rectangles than {ref.observer!r}")
    boxes = [p.box for p in ref.patches]
    rows = []
    for _i, box in enumerate(boxes):
        found = [next((p.critical for p in s.patches if p.box == box), None) for s in sessions]
        crit = [c for c in found if c is not None]
        if not crit:
            continue
        med = int(np.floor(np.median(crit)))
        rows.append(
            {
                "box": box,
                "critical": crit,
                "median": med,
                "std": float(np.std(crit)),
                "within_one": float(np.mean([abs(c - med) <= 1 for c in crit])),
            }
        )
    agreement = {
        "observers": [s.observer for s in sessions],
        "patches": len(rows),
        "mean_std": float(np.mean([r["std"] for r in rows])) if rows else None,
        "within_one_level": float(np.mean([r["within_one"] for r in rows])) if rows else None,
    }
    return {"patches": rows, "agreement": agreement}


def export_pairs(
    image: np.ndarray, boxes: Sequence[Box], versions: Sequence[np.ndarray], out: str | Path, stem: str = "patch"
) -> list[Path]:
    """Pristine and critical-level crops as a pair folder (``data/``, ``label/``),
    ``<stem>_000.png`` on. Other images' pairs in the folder stay; this image's earlier
    export is replaced as a whole, and only once every new crop is written (a failed
    export leaves it as it was)."""
    import glob

    target = assemble_target(image, boxes, versions)
    pristine = assemble_target(image, [], [])
    out = Path(out)
    files = []
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        for arr, sub in ((pristine, "data"), (target, "label")):
            crop = np.clip(np.rint(arr[y0:y1, x0:x1]), 0, 255).astype(np.uint8)
            files.append((out / sub / f"{stem}_{i:03d}.png", png_writer(crop)))
    written = atomic_write_all(files)
    for sub in ("data", "label"):  # the earlier export had more patches: theirs would pair with nothing now
        for p in (out / sub).glob(f"{glob.escape(stem)}_[0-9][0-9][0-9].png"):
            if p not in written:
                p.unlink(missing_ok=True)
    return written
