"""A visibility-test session: conditions (image x JND model), the trials so far,
saved atomically after every trial so that a crash loses at most the trial on
screen and Start on the same file resumes where it stopped.

The procedures are 2AFC (two intervals, or side by side: "which one is
distorted?") and flicker (one side alternates distorted and pristine at a set
rate, the other shows the pristine still: "which one flickers?"). Both have a
guess rate of 0.5. Conditions are interleaved in random order; the order and the
distorted side come from a generator seeded by the session seed and the trial
count, so a resumed session continues as the unbroken one would have.

A session records its viewing conditions (distance, display size, peak luminance:
:class:`~napari_resjnd.core.visibility.viewing.ViewingConditions`), asked once when
it starts; sessions saved before they were recorded hold ``viewing: null``.
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import ResJNDError
from ...files import atomic_write, json_text
from ..viewing import ViewingConditions
from .psychometric import Fit, fit
from .quest import QuestPlus

FORMAT = "resjnd-visibility-session"
#: Procedure names as sessions record them.
PROCEDURES = ("2afc-side-by-side", "2afc-intervals", "flicker")


@dataclass
class Condition:
    """One staircase: a JND model's noise on one image."""

    image: str
    model: str
    image_sha256: str | None = None

    @property
    def key(self) -> str:
        return f"{self.image} | {self.model}"


@dataclass
class ObserverSession:
    """One observer's visibility test; ``trials`` holds every answer in order."""

    observer: str
    procedure: str
    conditions: list[Condition]
    trials_per_condition: int = 40
    seed: int = 0
    rate_hz: float = 4.0
    trials: list[dict] = field(default_factory=list)
    #: :meth:`ViewingConditions.as_dict`, or None (a session saved before they were recorded).
    viewing: dict | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    format: str = FORMAT

    def __post_init__(self) -> None:
        self.check()

    def check(self, where: object = "session") -> None:
        if self.procedure not in PROCEDURES:
            raise ResJNDError(f"{where}: procedure {self.procedure!r} is not one of {', '.join(PROCEDURES)}")
        if not self.conditions:
            raise ResJNDError(f"{where}: no conditions")
        if not str(self.observer).strip():
            raise ResJNDError(f"{where}: the observer needs an id")
        keys = [c.key for c in self.conditions]
        if len(set(keys)) != len(keys):
            raise ResJNDError(f"{where}: a condition appears twice")
        if not _whole(self.trials_per_condition) or self.trials_per_condition < 1:
            raise ResJNDError(f"{where}: trials_per_condition must be a whole number of at least 1")
        if not _whole(self.seed) or self.seed < 0:
            raise ResJNDError(f"{where}: seed must be a whole number of at least 0, got {self.seed!r}")
        if not _number(self.rate_hz) or self.rate_hz <= 0:
            raise ResJNDError(f"{where}: rate_hz must be a number above 0, got {self.rate_hz!r}")
        if self.viewing is not None:
            ViewingConditions.from_dict(self.viewing, f"{where}: viewing")
        for i, t in enumerate(self.trials):
            if not isinstance(t, dict) or not isinstance(t.get("correct"), bool):
                raise ResJNDError(f"{where}: trial {i} has no right/wrong answer")
            if not _number(t.get("psnr")):
                raise ResJNDError(f"{where}: trial {i} has no finite PSNR")
            if t.get("beta") is not None and (not _number(t["beta"]) or t["beta"] < 0):
                raise ResJNDError(
                    f"{where}: trial {i}'s noise scale beta must be a number of at least 0, got {t['beta']!r}"
                )
        unknown = {t.get("condition") for t in self.trials} - set(keys)
        if unknown:
            raise ResJNDError(f"{where}: trials of unknown conditions {sorted(map(str, unknown))}")

    # ---- staircases ----------------------------------------------------
    def answers(self, key: str) -> list[tuple[float, bool]]:
        return [(float(t["psnr"]), bool(t["correct"])) for t in self.trials if t["condition"] == key]

    def quest(self, key: str) -> QuestPlus:
        """The condition's QUEST+ state, rebuilt from its answers."""
        return QuestPlus.replay(self.answers(key))

    def remaining(self) -> list[Condition]:
        return [c for c in self.conditions if len(self.answers(c.key)) < self.trials_per_condition]

    @property
    def done(self) -> bool:
        return not self.remaining()

    def rng(self) -> random.Random:
        """The generator of trial number ``len(trials)``: resuming repeats nothing."""
        return random.Random(self.seed * 1_000_003 + len(self.trials))

    def fits(self) -> dict[str, Fit]:
        """A psychometric fit per condition with answers; each condition's bootstrap has
        its own seed (the session's and the condition's), so no two share their resamples."""
        out = {}
        for c in self.conditions:
            a = self.answers(c.key)
            if a:
                s, y = zip(*a)
                out[c.key] = fit(s, y, seed=self.condition_seed(c.key))
        return out

    def condition_seed(self, key: str) -> int:
        return self.seed * 1_000_003 + zlib.crc32(key.encode())

    @property
    def viewing_conditions(self) -> ViewingConditions | None:
        """The recorded viewing conditions (None: not recorded)."""
        return None if self.viewing is None else ViewingConditions.from_dict(self.viewing)

    @property
    def identity(self) -> tuple:
        """What makes two files the same session: observer, procedure, seed, start."""
        return (self.observer, self.procedure, self.seed, self.created)

    # ---- files ---------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Atomically (a temporary file, then rename)."""
        text = json_text(asdict(self), 1)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, path: str | Path) -> ObserverSession:
        """A saved session; a damaged or foreign file is a one-line ResJNDError naming it."""
        try:
            d = json.loads(Path(path).read_text())
        except OSError as e:
            raise ResJNDError(f"{path}: cannot read it ({e.strerror or e})") from None
        except ValueError as e:
            raise ResJNDError(f"{path}: not a visibility session (not JSON: {e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ResJNDError(f"{path}: not a visibility session (no format {FORMAT!r})")
        try:
            d["conditions"] = [Condition(**c) for c in d["conditions"]]
            return cls(**d)
        except ResJNDError as e:
            raise ResJNDError(f"{path}: {e}") from None
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ResJNDError(f"{path}: not a visibility session ({type(e).__name__}: {e})") from None


def load_all(paths: list[str] | list[Path]) -> tuple[list[ObserverSession], list[str]]:
    """Sessions for a report, each counted once: a file given twice or a byte copy of
    another is left out with a note; two files holding the same session (observer,
    procedure, seed, start) with different answers (a copy taken mid-session, say)
    are refused, since only one of them can be the record."""
    import hashlib

    sessions: list[ObserverSession] = []
    notes: list[str] = []
    by_hash: dict[str, Path] = {}
    by_identity: dict[tuple, Path] = {}
    for p in map(Path, paths):
        try:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError as e:
            raise ResJNDError(f"{p}: cannot read it ({e.strerror or e})") from None
        if digest in by_hash:
            notes.append(f"{p} is the same file as {by_hash[digest]}: counted once")
            continue
        session = ObserverSession.load(p)
        if session.identity in by_identity:
            first = by_identity[session.identity]
            raise ResJNDError(
                f"{first} and {p} hold the same session (observer {session.observer!r}, started {session.created}) "
                "with different answers: give the one to report"
            )
        by_hash[digest], by_identity[session.identity] = p, p
        sessions.append(session)
    return sessions, notes


def _whole(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
