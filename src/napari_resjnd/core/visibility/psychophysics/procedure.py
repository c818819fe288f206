"""The trial loop of a visibility test, Qt-free: a generator that yields each
:class:`Trial` to show and is sent the observer's :class:`Response`.

The widget sends key presses, :func:`answer_with` a simulated observer; either way
the same code chooses the condition, places the stimulus by QUEST+, records the
answer and saves the session before the next trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import Cancelled, ResJNDError
from .session import Condition, ObserverSession
from .stimuli import ConditionStimuli, Stimulus


@dataclass(frozen=True)
class Trial:
    """What to show: the condition, the PSNR QUEST+ chose, where the distortion is."""

    #: Index of this trial in the session (0-based) and the session's length.
    number: int
    total: int
    condition: Condition
    #: The PSNR (dB) QUEST+ asked for; ``stimulus.psnr`` is the one shown.
    psnr: float
    #: 0: the distortion is first (left, or interval 1); 1: second (right, interval 2).
    target: int
    #: The images; None when no images are shown (a simulated observer).
    stimulus: Stimulus | None = None


@dataclass(frozen=True)
class Response:
    """The observer's choice (0: first/left, 1: second/right) and the display log."""

    choice: int
    response_time_s: float = math.nan
    #: perf_counter() times (s) at which the display changed during the trial.
    frame_times: tuple[float, ...] = ()
    #: What those times are: "swap" (the frame reached the screen's buffer) or
    #: "issued" (handed to the canvas; where no buffer swap is seen).
    frame_clock: str = "issued"
    #: Changes replaced by the next one before they were ever drawn.
    dropped_frames: int = 0


def frame_log(times: tuple[float, ...], clock: str = "issued", dropped: int = 0) -> dict:
    """Frame intervals (ms) and, for a flicker, the measured rate (a full period is
    two changes)."""
    d = np.diff(np.asarray(times, np.float64)) * 1000
    out: dict = {"frame_clock": clock, "dropped_frames": dropped, "frame_intervals_ms": [round(float(v), 2) for v in d]}
    if d.size and d.mean() > 0:
        out["measured_hz"] = round(float(1000 / (2 * d.mean())), 3)
        out["frame_jitter_ms"] = round(float(d.std()), 3)
    return out


def run(
    session: ObserverSession,
    path: str | Path | None = None,
    stimuli: Mapping[str, ConditionStimuli] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[Trial, Response, ObserverSession]:
    """Trials until every condition has its count; saved to ``path`` after each."""
    quests = {c.key: session.quest(c.key) for c in session.conditions}
    total = session.trials_per_condition * len(session.conditions)
    while not session.done:
        if should_stop is not None and should_stop():
            raise Cancelled("visibility test stopped")
        rng = session.rng()
        condition = rng.choice(session.remaining())
        asked = quests[condition.key].next_stimulus()
        target = rng.randrange(2)
        stim = stimuli[condition.key].at(asked) if stimuli is not None else None
        response = yield Trial(len(session.trials), total, condition, asked, target, stim)
        if not isinstance(response, Response) or response.choice not in (0, 1):
            raise ResJNDError(f"a trial's answer must be a Response with choice 0 or 1, got {response!r}")
        shown = stim.psnr if stim is not None else asked
        correct = response.choice == target
        record = {
            "condition": condition.key,
            "psnr": round(shown, 4),
            "psnr_asked": asked,
            "beta": None if stim is None else stim.beta,
            "target": target,
            "choice": response.choice,
            "correct": correct,
            "response_time_s": None if math.isnan(response.response_time_s) else round(response.response_time_s, 4),
            "answered_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if response.frame_times:
            record.update(frame_log(response.frame_times, response.frame_clock, response.dropped_frames))
        session.trials.append(record)
        quests[condition.key].update(shown, correct)
        if path is not None:
            session.save(path)
    return session


def answer_with(trials: Generator[Trial, Response, ObserverSession], answer: Callable[[Trial], int]) -> ObserverSession:
    """Drive :func:`run` to its end with ``answer(trial)`` -> 0 or 1."""
    trial = next(trials)
    while True:
        try:
            trial = trials.send(Response(answer(trial)))
        except StopIteration as end:
            return end.value
