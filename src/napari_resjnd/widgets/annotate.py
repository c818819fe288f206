"""The Annotate CPL widget: judge distortion ladders on rectangles drawn over an
image, by flicker or side by side, and get a target (CPL) layer for fine-tuning.

Layout and glue only: ladders, the staircase, sessions and target assembly live
in :mod:`napari_resjnd.core.research.ladders` and :mod:`napari_resjnd.core.research.annotation`.
Every answer is saved at once to the session file, so a crash loses nothing and
Start on the same file resumes.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, LineEdit, PushButton, SpinBox
from psygnal import Signal

from ..core.errors import ResJNDError
from ..core.events import AnnotationDone, TrialShown
from ..core.images import image_sha256
from ..core.research.annotation import AnnotationSession, PatchRecord, assemble_target, export_pairs, ladders_for
from ..core.research.ladders import GENERATORS, Ladder
from ..core.weights import models_dir
from ._common import DockContainer, StatusLine, dockable, follow_layers, layer_choices, report_error
from ._regions import annotation

if TYPE_CHECKING:
    from napari.viewer import Viewer

MODES = ("flicker", "side by side")
STIM_ORIGINAL, STIM_CANDIDATE, STIM_PAIR = "stimulus: original", "stimulus: candidate", "stimulus: pair"


def sessions_dir() -> Path:
    return models_dir().parent / "sessions"


class AnnotateWidget(DockContainer):
    """ResJND: Annotate CPL. Docked in napari through ``napari.yaml``.

    Interactive rather than a background worker: timers flip the stimuli and the
    observer's keys answer. ``progressed`` emits a
    :class:`~napari_resjnd.core.events.TrialShown` per trial and an
    :class:`~napari_resjnd.core.events.AnnotationDone` at the end.
    """

    progressed = Signal(object)

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.session: AnnotationSession | None = None
        self.session_path: Path | None = None
        self.ladders: list[Ladder] = []
        self.busy = False
        self.current: tuple[int, int] | None = None  # (patch, level) on screen
        self._trial: dict = {}
        #: The pristine image layer of the session under way (napari ships no type information).
        self._source: Any = None
        self.toggle_times: list[float] = []
        self.rng = random.Random(0)
        from qtpy.QtCore import Qt, QTimer

        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._flip)

        self.pristine = ComboBox(label="pristine", choices=self._images)
        self.shapes = ComboBox(label="rectangles", choices=self._shapes)
        self.generator = ComboBox(label="distortion", choices=list(GENERATORS), value="klt")
        self.levels = SpinBox(label="ladder levels", min=2, max=64, value=8)
        self.mode = ComboBox(label="presentation", choices=list(MODES), value="flicker")
        self.rate = FloatSpinBox(label="flicker (Hz)", min=0.5, max=15, step=0.5, value=2.0)
        self.observer = LineEdit(label="observer", value="observer1")
        self.session_file = FileEdit(label="session file", mode=FileDialogMode.OPTIONAL_FILE, filter="*.json")
        self.export_dir = FileEdit(label="export pairs to", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.start_button = PushButton(text="Start / resume")
        self.same_button = PushButton(text="Same (J)", enabled=False)
        self.diff_button = PushButton(text="Different (K)", enabled=False)
        self.status = StatusLine("draw rectangles, then Start")
        answers = Container(widgets=[self.same_button, self.diff_button], layout="horizontal", labels=False)
        self.extend(
            [
                self.pristine,
                self.shapes,
                self.generator,
                self.levels,
                self.mode,
                self.rate,
                self.observer,
                self.session_file,
                self.export_dir,
                self.start_button,
                answers,
                self.status,
            ]
        )
        self.start_button.changed.connect(self.start)
        self.same_button.changed.connect(lambda _=None: self.answer(True))
        self.diff_button.changed.connect(lambda _=None: self.answer(False))
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "annotate")

    def _images(self, _=None):
        from napari.layers import Image

        return layer_choices(
            self._viewer, (Image,), lambda layer: layer.ndim == 2 and not layer.name.startswith("stimulus")
        )

    def _shapes(self, _=None):
        from napari.layers import Shapes

        return layer_choices(self._viewer, (Shapes,))

    # ---- session -------------------------------------------------------
    def start(self, _=None) -> None:
        try:
            self._start()
        except ResJNDError as e:
            report_error(self.status, "ResJND annotation", str(e))
        except OSError as e:
            report_error(self.status, "ResJND annotation", f"{type(e).__name__}: {e}")

    def _start(self) -> None:
        src, shapes = self.pristine.value, self.shapes.value
        if src is None or shapes is None:
            raise ResJNDError("pick the pristine image and a Shapes layer of rectangles")
        boxes, _ = annotation(shapes, src)
        if boxes is None:
            raise ResJNDError(f"layer {shapes.name!r} holds no rectangles: pick a Shapes layer")
        h, w = src.data.shape[:2]
        boxes = [(max(0, y0), min(h, y1), max(0, x0), min(w, x1)) for y0, y1, x0, x1 in boxes]
        name = str(self.session_file.value)
        path = Path(name) if name not in ("", ".") else sessions_dir() / f"{src.name}-{self.observer.value}.json"
        settings = (self.generator.value, self.levels.value)
        session = AnnotationSession.load(path) if path.exists() else None
        if session is not None and (session.generator, session.levels) != settings:
            raise ResJNDError(
                f"{path} was made with {session.generator}/{session.levels} levels: "
                "choose those, or another session file"
            )
        if session is not None and session.image_sha256 not in (None, image_sha256(np.asarray(src.data))):
            raise ResJNDError(
                f"{path} was made on another image than {src.name!r}: pick that image, or another session file"
            )
        if session is None:
            session = AnnotationSession(
                self.observer.value,
                src.name,
                tuple(src.data.shape),
                self.generator.value,
                self.levels.value,
                seed=0,
                mode=self.mode.value,
                patches=[PatchRecord(b) for b in boxes],
                image_sha256=image_sha256(np.asarray(src.data)),
            )
        self.session, self.session_path, self._source = session, path, src
        image = np.asarray(src.data)
        self.ladders = ladders_for(image, session)
        for rec, lad in zip(session.patches, self.ladders):
            rec.ladder_psnr, rec.ladder_params = lad.psnr, lad.params
        session.save(path)
        self.busy = True
        self.start_button.enabled = False
        self.same_button.enabled = self.diff_button.enabled = True
        self._bind_keys(True)
        self._next_trial()

    def _bind_keys(self, on: bool) -> None:
        for key, same in (("j", True), ("k", False)):
            if on:
                self._viewer.bind_key(key, lambda _v, s=same: self.answer(s), overwrite=True)
            else:
                self._viewer.bind_key(key, None, overwrite=True)

    def _under_way(self) -> tuple[AnnotationSession, Path, Any]:
        """The session, its file and its pristine layer: set by Start before any trial."""
        session, path, source = self.session, self.session_path, self._source
        assert session is not None and path is not None and source is not None, "no session under way"
        return session, path, source

    # ---- trials --------------------------------------------------------
    def _next_trial(self) -> None:
        session, _, _ = self._under_way()
        i = session.next_patch()
        if i is None:
            self._finish()
            return
        level = session.staircase(i).next_level()
        self.current = (i, level)
        original, candidate = self.ladders[i].levels[0], self.ladders[i].levels[level]
        self._show(i, original / 255, candidate / 255)
        ev = TrialShown(i, len(session.patches), sum(p.critical is not None for p in session.patches), level)
        self.status.value = (
            f"patch {ev.patch + 1} of {ev.patches} ({ev.done} done), level {ev.level}: same or different?"
        )
        self.progressed.emit(ev)

    def _place(self, name: str, data: np.ndarray, offset: tuple[int, int], visible: bool = True) -> Any:
        _, _, src = self._under_way()
        translate = [t + o * s for t, o, s in zip(src.translate[-2:], offset, src.scale[-2:])]
        data = data.astype(np.float32)
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data, layer.translate, layer.visible = data, translate, visible
        else:
            layer = self._viewer.add_image(
                data,
                name=name,
                rgb=True,
                scale=src.scale[-2:],
                translate=translate,
                contrast_limits=(0, 1),
                visible=visible,
            )
        return layer

    def _show(self, i: int, original: np.ndarray, candidate: np.ndarray) -> None:
        session, _, src = self._under_way()
        y0, _, x0, _ = session.patches[i].box
        self._timer.stop()
        self.toggle_times = []
        if self.mode.value == "flicker":
            first = self.rng.choice(["original", "candidate"])
            self._place(STIM_ORIGINAL, original, (y0, x0))
            self._place(STIM_CANDIDATE, candidate, (y0, x0), visible=first == "candidate")
            self._trial = {"mode": "flicker", "first": first, "rate_hz": self.rate.value}
            self._timer.start(max(1, round(500 / self.rate.value)))  # half a period per image
        else:
            side = self.rng.choice(["left", "right"])
            gap = np.ones((original.shape[0], 8, 3))
            pair = [candidate, gap, original] if side == "left" else [original, gap, candidate]
            w = src.data.shape[1]
            self._place(STIM_PAIR, np.concatenate(pair, axis=1), (y0, w + 16))
            self._trial = {"mode": "side by side", "candidate_side": side}
            scene = getattr(self._viewer, "scene", None)  # napari >= 0.9; before: viewer.camera
            (scene.camera if scene is not None else self._viewer.camera).zoom = 1.0
        self._trial["t_shown"] = time.perf_counter()

    def _flip(self) -> None:
        self.toggle_times.append(time.perf_counter())
        layer = self._viewer.layers[STIM_CANDIDATE] if STIM_CANDIDATE in self._viewer.layers else None
        if layer is not None:
            layer.visible = not layer.visible

    def answer(self, same: bool) -> None:
        """Record the observer's answer for the trial on screen and show the next."""
        if not self.busy or self.current is None:
            return
        session, path, _ = self._under_way()
        i, level = self.current
        now = time.perf_counter()
        trial = dict(self._trial)
        t0 = trial.pop("t_shown")
        # How it was shown and answered, saved with the answer (strings among them:
        # AnnotationSession.record's ``float`` annotation of these is too narrow).
        details = {"response_time_s": round(now - t0, 4), "answered_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **trial}
        session.record(i, level, same, **details)
        session.save(path)
        self._next_trial()

    def flicker_jitter_ms(self) -> float | None:
        """Standard deviation of the flicker's half periods during the last trial."""
        d = np.diff(self.toggle_times)
        return float(np.std(d) * 1000) if len(d) > 2 else None

    def _finish(self) -> None:
        self._timer.stop()
        self._bind_keys(False)
        for name in (STIM_ORIGINAL, STIM_CANDIDATE, STIM_PAIR):
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
        s, session_path, src = self._under_way()
        boxes = [p.box for p in s.patches]
        versions = []  # each patch's version at its critical level
        for p, lad in zip(s.patches, self.ladders):
            assert p.critical is not None, "a session finishes when every patch has its critical level"
            versions.append(lad.levels[p.critical])
        target = assemble_target(np.asarray(src.data), boxes, versions)
        name = f"{src.name} CPL target"
        meta = {
            "resjnd": {
                "output": "cpl_target",
                "session": str(session_path),
                "observer": s.observer,
                "generator": s.generator,
                "critical_levels": [p.critical for p in s.patches],
                "boxes": boxes,
            }
        }
        data = (target / 255).astype(np.float32)
        if name in self._viewer.layers:
            self._viewer.layers[name].data = data
            self._viewer.layers[name].metadata = meta
        else:
            self._viewer.add_image(
                data,
                name=name,
                rgb=True,
                scale=src.scale,
                translate=src.translate,
                contrast_limits=(0, 1),
                metadata=meta,
            )
        self.busy, self.current = False, None
        self.start_button.enabled = True
        self.same_button.enabled = self.diff_button.enabled = False
        done = AnnotationDone(tuple(p.critical for p in s.patches), name, str(session_path))
        self.status.value = (
            f"done: critical levels {list(done.critical)}; "
            f"target layer {name!r} ready for Fine-tune; session {session_path.name}"
        )
        export = str(self.export_dir.value)
        if export not in ("", "."):
            try:
                export_pairs(np.asarray(src.data), boxes, versions, export, stem=src.name)
            except (OSError, ResJNDError) as e:  # the session and the target layer are kept
                report_error(self.status, "Annotate", f"pairs not exported to {export}: {e}")
        self.progressed.emit(done)
