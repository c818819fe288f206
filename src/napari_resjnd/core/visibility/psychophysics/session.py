"""A visibility-test session: conditions (image x JND model), the trials so far,
saved atomically after every trial so that a crash loses at most the trial on
screen and Start on the same file resumes where it stopped.

The procedures are 2AFC (two intervals, or side by side: "which one is
distorted?") and flicker (one side alternates distorted and pristine at a set
rate, the other shows the pristine still: "which one flickers?"). Both have a
guess rate of 0.5. Conditions are interleaved in random order; the order and the
distorted side come from a generator seeded by the session seed and the trial
count, so a resumed session continues as the unbroken one would have.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import ResJNDError
from ...files import atomic_write
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
        if not isinstance(self.trials_per_condition, int) or self.trials_per_condition < 1:
            raise ResJNDError(f"{where}: trials_per_condition must be a whole number of at least 1")
        for i, t in enumerate(self.trials):
            if not isinstance(t, dict) or not isinstance(t.get("correct"), bool):
                raise ResJNDError(f"{where}: trial {i} has no right/wrong answer")
            if not isinstance(t.get("psnr"), (int, float)) or not math.isfinite(t["psnr"]):
                raise ResJNDError(f"{where}: trial {i} has no finite PSNR")
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
        """A psychometric fit per condition with answers."""
        out = {}
        for c in self.conditions:
            a = self.answers(c.key)
            if a:
                s, y = zip(*a)
                out[c.key] = fit(s, y, seed=self.seed)
        return out

    # ---- files ---------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Atomically (a temporary file, then rename)."""
        text = json.dumps(asdict(self), indent=1)
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
        except (TypeError, KeyError) as e:
            raise ResJNDError(f"{path}: not a visibility session ({type(e).__name__}: {e})") from None
