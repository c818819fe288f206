"""The Visibility test widget: observers' detection thresholds for JND-shaped noise,
by 2AFC (side by side, or two intervals) or flicker, QUEST+ placing each trial.

Layout, display and keys only: the trial loop, the staircases and the session file
are :func:`napari_resjnd.core.visibility.psychophysics.procedure.run`, which saves the
session after every answer (Start on the same file resumes). During the trials the
stimuli stand alone on a uniform mid-grey full-screen canvas, the rest of napari
hidden (:mod:`._presentation`), answers by keyboard (the keys are on the answer
buttons; Esc stops), napari restored afterwards. Stimuli are shown at one image
pixel per screen pixel (zoom 1 / device pixel ratio, nearest interpolation),
checked before every trial; every display change is timed and logged with the
answer. The viewing conditions are asked once per session (the fields), recorded
in it, and a resumed session keeps its own.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, Select, SpinBox
from psygnal import Signal

from ..core.errors import ResJNDError
from ..core.images import image_sha256
from ..core.visibility.psychophysics.procedure import Response, Trial, run
from ..core.visibility.psychophysics.session import PROCEDURES, Condition, ObserverSession
from ..core.weights import models_dir
from ._common import DockContainer, StatusLine, dockable, follow_layers, source_images
from ._frame_clock import FrameClock
from ._presentation import Presentation, one_to_one, side_by_side
from ._runner import WorkerRunner
from ._viewing import ViewingFields
from ._visibility_worker import VisibilityTestJob, prepare_test
from .visibility import MODEL_CHOICES

if TYPE_CHECKING:
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

STIMULUS = "stimulus: visibility test"
#: Grey gap between the two halves of a side-by-side display (px), and its level.
GAP_PX, GREY = 16, 128
#: Two-interval timing: each interval, and the blank between them (ms).
INTERVAL_MS, BLANK_MS = 500, 400
KEYS = {"1": 0, "Left": 0, "2": 1, "Right": 1}
STOP_KEY = "Escape"
#: From entering the full-screen presentation to the first trial (ms).
SETTLE_MS = 300
QUESTIONS = {
    "2afc-side-by-side": "which side is distorted?",
    "2afc-intervals": "which interval was distorted, the first or the second?",
    "flicker": "which side flickers?",
}


def sessions_dir() -> Path:
    return models_dir().parent / "visibility-sessions"


class VisibilityTestWidget(DockContainer):
    """ResJND: Visibility test. ``progressed`` emits each :class:`Trial` shown, then
    the finished :class:`ObserverSession`."""

    progressed = Signal(object)

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        from qtpy.QtCore import Qt, QTimer

        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._flip)
        self.images = Select(label="images", choices=self._images)
        self.models = Select(label="JND models", choices=list(MODEL_CHOICES), value=["yang2005", "uniform"])
        self.procedure = ComboBox(label="procedure", choices=list(PROCEDURES), value="2afc-side-by-side")
        self.rate = FloatSpinBox(label="flicker (Hz)", min=0.5, max=15, step=0.5, value=4.0)
        self.trials = SpinBox(label="trials per condition", min=1, max=500, value=40)
        self.observer = LineEdit(label="observer", value="observer1")
        self.viewing = ViewingFields()
        self.session_file = FileEdit(label="session file", mode=FileDialogMode.OPTIONAL_FILE, filter="*.json")
        self.start_button = PushButton(text="Start / resume")
        self.stop_button = PushButton(text="Stop (Esc)", enabled=False)
        self.first_button = PushButton(text="Left / 1st (1, ←)", enabled=False)
        self.second_button = PushButton(text="Right / 2nd (2, →)", enabled=False)
        self.status = StatusLine("pick images and models, then Start")
        self.runner = WorkerRunner("ResJND visibility test", self.status, self.start_button)
        answers = Container(widgets=[self.first_button, self.second_button], layout="horizontal", labels=False)
        self.extend(
            [
                self.images,
                self.models,
                self.procedure,
                self.rate,
                self.trials,
                self.observer,
                self.session_file,
                self.start_button,
                self.stop_button,
                answers,
                self.status,
            ]
        )
        self.viewing.fold_into(self, 6)  # under the observer: asked once per session
        self.session: ObserverSession | None = None
        self.session_path: Path | None = None
        #: The trial on screen, or None.
        self.trial: Trial | None = None
        #: When the current trial's display changes were issued and drawn.
        self.clock = FrameClock()
        #: What keeps the display from 1 image px = 1 screen px (empty: nothing).
        self.display_problems: list[str] = []
        self._loop: Generator[Trial, Response, ObserverSession] | None = None
        #: The current trial's frame layers, and the one on screen.
        self._layers: list[Any] = []
        self._current = 0
        #: Layers hidden while the test runs, shown again when it ends.
        self._hidden: list[Any] = []
        #: The full-screen grey presentation while trials run.
        self.presentation = Presentation(napari_viewer, GREY)
        self._shown_at = 0.0
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(lambda _=None: self.stop("stopped; Start on the same file resumes"))
        self.first_button.changed.connect(lambda _=None: self.answer(0))
        self.second_button.changed.connect(lambda _=None: self.answer(1))
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "visibility-test")

    def _images(self, _=None):

        return source_images(self._viewer, lambda layer: not layer.name.startswith(STIMULUS))

    # ---- session -------------------------------------------------------
    def start(self, _=None) -> None:
        try:
            job = self._open_session()
        except (ResJNDError, OSError) as e:
            self.runner.report(str(e))
            return
        self.runner.start(prepare_test, job, on_value=self._begin)

    def _open_session(self) -> VisibilityTestJob:
        layers, models = list(self.images.value), list(self.models.value)
        if not layers or not models:
            raise ResJNDError("pick at least one image and one JND model")
        viewing = self.viewing.value_or_error()
        hashes = {layer.name: image_sha256(np.asarray(layer.data)) for layer in layers}
        conditions = [Condition(layer.name, m, hashes[layer.name]) for layer in layers for m in models]
        name = str(self.session_file.value)
        path = Path(name) if name not in ("", ".") else sessions_dir() / f"visibility-{self.observer.value}.json"
        if path.exists():
            session = ObserverSession.load(path)
            if session.observer != self.observer.value:
                raise ResJNDError(
                    f"{path} is observer {session.observer!r}'s session: give that observer, or another session file"
                )
            same_test = [c.key for c in session.conditions] == [c.key for c in conditions]
            if not same_test or session.procedure != self.procedure.value:
                raise ResJNDError(
                    f"{path} holds another test ({session.procedure}; "
                    f"{', '.join(c.key for c in session.conditions)}): pick those, or another session file"
                )
            changed = sorted({c.image for c in session.conditions if c.image_sha256 not in (None, hashes[c.image])})
            if changed:
                raise ResJNDError(
                    f"{path} was made on other pixels than the layer(s) {', '.join(map(repr, changed))}: "
                    "pick those images, or another session file"
                )
            self._keep_viewing(session, viewing, path)
        else:
            session = ObserverSession(
                self.observer.value,
                self.procedure.value,
                conditions,
                trials_per_condition=int(self.trials.value),
                rate_hz=float(self.rate.value),
                seed=secrets.randbelow(2**31),  # each observer their own trial order and noise; saved, so reproducible
                viewing=viewing.as_dict(),
            )
            session.save(path)
        self.session, self.session_path = session, path
        images = {layer.name: np.asarray(layer.data) for layer in layers}
        return VisibilityTestJob(images, tuple(models), seed=session.seed)

    def _keep_viewing(self, session: ObserverSession, viewing, path: Path) -> None:
        """A resumed session keeps the viewing conditions it was started with."""
        recorded = session.viewing_conditions
        if recorded is None:  # saved before sessions recorded them: from now on, these
            session.viewing = viewing.as_dict()
            return
        why = recorded.differs_from(viewing)
        if why is not None:
            raise ResJNDError(
                f"{path} was run at {recorded.describe()}; the fields give {why}: "
                "set the viewing conditions as then, or use another session file"
            )

    def _begin(self, stimuli: dict) -> None:
        assert self.session is not None
        self.runner.hold()  # busy (Start disabled) until the test ends
        by_key = {Condition(image, model).key: s for (image, model), s in stimuli.items()}
        self._loop = loop = run(self.session, self.session_path, by_key)
        self._hidden = [la for la in self._viewer.layers if la.visible and not la.name.startswith(STIMULUS)]
        for layer in self._hidden:  # nothing but the stimulus on screen
            layer.visible = False
        self.presentation.enter()  # full screen, mid-grey, napari's chrome hidden
        self._bind_keys(True)
        self.clock.watch(self._canvas())
        self.stop_button.enabled = self.first_button.enabled = self.second_button.enabled = True
        from qtpy.QtCore import QTimer

        # the first trial once the full-screen layout has settled, so no resize falls in its timing
        QTimer.singleShot(SETTLE_MS, lambda: self._first_trial(loop))

    def _first_trial(self, loop: Generator[Trial, Response, ObserverSession]) -> None:
        if self._loop is loop:  # not stopped meanwhile
            self._advance(lambda: next(loop))

    def _advance(self, step: Callable[[], Any]) -> None:
        """The next trial from the session's loop (``step`` sends it a response, or
        starts it): show it, or finish the session, or stop on an error."""
        try:
            trial = step()
        except StopIteration as end:
            self._finish(end.value)
            return
        except (ResJNDError, OSError) as e:
            self.stop(f"error: {e}")
            return
        except Exception:  # a bug: the screen and keys back to normal, then the traceback
            self.stop("error: a bug stopped the test (see the traceback)")
            raise
        self._show(trial)

    def _bind_keys(self, on: bool) -> None:
        for key, choice in KEYS.items():
            self._viewer.bind_key(key, (lambda _v, c=choice: self.answer(c)) if on else None, overwrite=True)
        stop = lambda _v: self.stop("stopped (Esc); Start on the same file resumes")
        self._viewer.bind_key(STOP_KEY, stop if on else None, overwrite=True)

    # ---- display -------------------------------------------------------
    def _frame_layers(self, frames: list[np.ndarray]) -> list[Any]:
        """One layer per frame of the trial, all in one place, only the first visible:
        a display change is a visibility switch, with no texture upload in between."""
        names = [STIMULUS, *(f"{STIMULUS} ({k + 1})" for k in range(1, len(frames)))]
        for layer in [la for la in self._viewer.layers if la.name.startswith(STIMULUS) and la.name not in names]:
            self._viewer.layers.remove(layer)
        layers = []
        for k, (name, data) in enumerate(zip(names, frames)):
            if name in self._viewer.layers:
                layer = self._viewer.layers[name]
                layer.data = data
            else:
                layer = self._viewer.add_image(data, name=name, rgb=True, contrast_limits=(0, 255))
            layer.interpolation2d = "nearest"
            layer.visible = k == 0
            layers.append(layer)
        return layers

    def check_display(self, layer: Any) -> list[str]:
        """One image pixel per screen pixel, nearest interpolation, centred; returns what
        still stands in the way (also shown in the status line)."""
        return one_to_one(self._viewer, layer, self._canvas())

    def _show(self, trial: Trial) -> None:
        from qtpy.QtCore import QTimer

        assert trial.stimulus is not None
        self.trial = trial
        self.clock.reset()
        self._timer.stop()
        pristine, distorted = trial.stimulus.pristine, trial.stimulus.distorted
        proc = self.session.procedure if self.session else ""
        pair = (distorted, pristine) if trial.target == 0 else (pristine, distorted)
        if proc == "2afc-side-by-side":
            frames = [side_by_side(*pair, GAP_PX, GREY)]
        elif proc == "flicker":  # the target side alternates distorted / pristine
            still = side_by_side(pristine, pristine, GAP_PX, GREY)
            frames = [side_by_side(*pair, GAP_PX, GREY), still]
        else:  # two intervals: first, blank, second, blank
            blank = np.full_like(pristine, GREY)
            frames = [pair[0], blank, pair[1], blank]
        self._layers = self._frame_layers(frames)
        self._current = 0
        self.display_problems = self.check_display(self._layers[0])
        if self.display_problems:
            log.warning("visibility test display: %s", "; ".join(self.display_problems))
        self._shown_at = time.perf_counter()
        self.clock.changed(self._shown_at)
        if proc == "flicker" and self.session is not None:
            self._timer.start(max(1, round(500 / self.session.rate_hz)))  # half a period per image
        elif proc == "2afc-intervals":
            n = trial.number
            for k, at in enumerate((INTERVAL_MS, INTERVAL_MS + BLANK_MS, 2 * INTERVAL_MS + BLANK_MS), start=1):
                QTimer.singleShot(at, lambda k=k, n=n: self._step(n, k))
        warn = f" (display: {'; '.join(self.display_problems)})" if self.display_problems else ""
        self.status.value = f"trial {trial.number + 1} of {trial.total}: {QUESTIONS.get(proc, '')} 1/← or 2/→{warn}"
        self.progressed.emit(trial)

    def _set_frame(self, k: int) -> None:
        """Show frame ``k`` of the trial (and log when)."""
        if not all(layer in self._viewer.layers for layer in self._layers):
            return
        for i, layer in enumerate(self._layers):
            if i != k:
                layer.visible = False
        self._layers[k].visible = True
        self._current = k
        self.clock.changed()

    def _flip(self) -> None:
        self._set_frame(1 - self._current)

    def _step(self, number: int, k: int) -> None:
        if self.trial is not None and self.trial.number == number:
            self._set_frame(k)

    # ---- answers -------------------------------------------------------
    @property
    def accepts_answers(self) -> bool:
        """A trial is on screen and, with two intervals, both have been shown."""
        loop = self._loop
        if self.trial is None or loop is None:
            return False
        return not (self.session is not None and self.session.procedure == "2afc-intervals" and self._current < 2)

    def answer(self, choice: int) -> None:
        """Record the answer to the trial on screen (0: left/first, 1: right/second)."""
        loop = self._loop
        if self.trial is None or loop is None:
            return
        if not self.accepts_answers:
            return
        self._timer.stop()
        times, clock = self.clock.times()
        response = Response(choice, time.perf_counter() - self._shown_at, times, clock, self.clock.dropped)
        self.trial = None
        self._advance(lambda: loop.send(response))

    @property
    def frame_times(self) -> list[float]:
        """When the current trial's display changes were issued (perf_counter)."""
        return self.clock.issued

    def measured_hz(self) -> float | None:
        """The flicker rate of the trial on screen so far."""
        return self.clock.measured_hz()

    def _canvas(self) -> Any:
        with contextlib.suppress(AttributeError):
            return self._viewer.window._qt_viewer.canvas.native
        return None

    def stop(self, message: str) -> None:
        """End the test now; everything answered is already in the session file."""
        self._timer.stop()
        self.trial, self._loop = None, None
        self._bind_keys(False)
        self.presentation.leave()
        self.clock.unwatch()
        for layer in [la for la in self._viewer.layers if la.name.startswith(STIMULUS)]:
            self._viewer.layers.remove(layer)
        self._layers = []
        for layer in self._hidden:
            if layer in self._viewer.layers:
                layer.visible = True
        self._hidden = []
        self.stop_button.enabled = self.first_button.enabled = self.second_button.enabled = False
        self.runner.release()
        self.status.value = message

    def _finish(self, session: ObserverSession) -> None:
        fits = session.fits()
        text = "; ".join(f"{k}: {f.threshold:.1f} dB [{f.ci_low:.1f}, {f.ci_high:.1f}]" for k, f in fits.items())
        rates = [t["measured_hz"] for t in session.trials if "measured_hz" in t]
        if session.procedure == "flicker" and rates:
            text += f"; flicker measured {np.mean(rates):.2f} Hz (set {session.rate_hz:g} Hz)"
        self.stop(f"done: threshold PSNR {text}; session {self.session_path}")
        self.progressed.emit(session)
