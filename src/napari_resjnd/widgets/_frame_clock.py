"""When a visibility test's display changes reach the screen: each change's issue
time, and the canvas's next buffer swap (a QOpenGLWidget's ``frameSwapped``) where
the canvas reports one. A change replaced before any swap was never drawn: it is
counted as dropped."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np


class FrameClock:
    """The display-change log of one trial; :meth:`reset` between trials."""

    def __init__(self) -> None:
        #: perf_counter() of each change as issued, and of each drawn change's swap.
        self.issued: list[float] = []
        self.swapped: list[float] = []
        #: Changes replaced before they were drawn.
        self.dropped = 0
        self._pending = False
        self._canvas: Any = None

    def reset(self) -> None:
        self.issued, self.swapped, self.dropped, self._pending = [], [], 0, False

    def changed(self, now: float | None = None) -> None:
        """Log a display change; its swap time comes with the next swap."""
        if self._pending and self._canvas is not None:
            self.dropped += 1
        self._pending = True
        self.issued.append(time.perf_counter() if now is None else now)

    def _on_swap(self) -> None:
        if self._pending:
            self.swapped.append(time.perf_counter())
            self._pending = False

    def watch(self, canvas: Any) -> None:
        """Listen to ``canvas.frameSwapped`` (None, or a canvas without it: issue times only)."""
        self.unwatch()
        with contextlib.suppress(AttributeError, TypeError):
            canvas.frameSwapped.connect(self._on_swap)
            self._canvas = canvas

    def unwatch(self) -> None:
        if self._canvas is not None:
            with contextlib.suppress(RuntimeError, TypeError):
                self._canvas.frameSwapped.disconnect(self._on_swap)
            self._canvas = None

    def times(self) -> tuple[tuple[float, ...], str]:
        """The changes' times and their clock: "swap" when every drawn change has its
        swap, else "issued"."""
        drawn = len(self.issued) - self.dropped - (1 if self._pending else 0)
        if self._canvas is not None and self.swapped and len(self.swapped) == drawn:
            return tuple(self.swapped), "swap"
        return tuple(self.issued), "issued"

    def measured_hz(self) -> float | None:
        """A flicker's rate from :meth:`times` (a full period is two changes)."""
        d = np.diff(self.times()[0])
        return float(1 / (2 * d.mean())) if d.size else None
