"""The Predict widget: pick weights and an image layer, run ResJND in a worker
thread with progress and Cancel, and show CPL, residual and JND layers.

Layout and glue only: the computation is :func:`._predict_worker.compute` (a
generator over the core's :func:`~napari_resjnd.core.inference.iter_predict`),
the look of the results lives in :mod:`._layers`, the weights on offer in
:mod:`._models`.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, ProgressBar, PushButton

from ..core.devices import AUTO, device_choices
from ..core.errors import ResJNDError
from ..core.inference import Prediction
from ..core.paths import cache_dir
from ..core.precision import choices as precision_choices
from ..core.weights import DEFAULT_WEIGHTS, REGISTRY
from . import _layers
from ._common import DockContainer, StatusLine, auto_size, dockable, follow_layers, layer_choices
from ._live import LivePreview
from ._models import OPEN_FILE, STORE, ModelStore
from ._predict_worker import PredictSettings, TilePreview, check_layer, compute
from ._runner import WorkerRunner
from ._work import Outcome

if TYPE_CHECKING:
    from napari.viewer import Viewer

log = logging.getLogger(__name__)

SCOPES = ("current plane", "whole stack")


class PredictWidget(DockContainer):
    """ResJND: Predict JND. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer, store: ModelStore = STORE):
        super().__init__()
        self._viewer = viewer = napari_viewer
        self._store = store
        self._last_model = None
        self._preview: LivePreview | None = None
        self._resetting = False

        self.model = ComboBox(label="weights", choices=self._model_choices)
        self.image = ComboBox(label="image", choices=self._image_choices)
        self.device = ComboBox(label="device", choices=device_choices(), value=AUTO)
        self.precision = ComboBox(label="precision", choices=self._precision_choices, value=AUTO)
        self.tile = auto_size(
            "tile (0 = auto)", 16384, 32, "tile side in px; 0: the whole image when it fits the memory budget"
        )
        self.scope = ComboBox(label="stacks", choices=list(SCOPES), value=SCOPES[0])
        self.show_cpl = CheckBox(text="CPL", value=True)
        self.show_residual = CheckBox(text="residual", value=True)
        self.show_jnd = CheckBox(text="JND", value=True)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, max=1, visible=True)
        self.status = StatusLine("ready")
        # The ways out when registry weights cannot be downloaded (shown then only).
        self.open_file_button = PushButton(
            text="Open file…", tooltip="use a weights file you have (.pth, .safetensors)"
        )
        self.copy_link_button = PushButton(text="Copy link", tooltip="copy the weights' download link")
        self.cache_button = PushButton(
            text="Cache folder", tooltip="open the folder where downloaded weights are kept: put the file there"
        )
        self.weights_help = Container(
            widgets=[self.open_file_button, self.copy_link_button, self.cache_button],
            layout="horizontal",
            labels=False,
            label="",
            visible=False,
        )
        self._missing_weights: str | None = None
        self.runner = WorkerRunner("ResJND", self.status, self.run_button, self.cancel_button, self.progress)
        outputs = Container(
            widgets=[self.show_cpl, self.show_residual, self.show_jnd], layout="horizontal", labels=False, label="add"
        )
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False, label="")
        self.extend(
            [
                self.model,
                self.image,
                self.device,
                self.precision,
                self.tile,
                self.scope,
                outputs,
                buttons,
                self.progress,
                self.status,
                self.weights_help,
            ]
        )
        self.weights_help.hide()  # explicitly, so that it takes no room until needed
        self.open_file_button.changed.connect(lambda _=None: self.ask_weights_file())
        self.copy_link_button.changed.connect(self.copy_download_link)
        self.cache_button.changed.connect(self.open_cache_folder)

        self.model.changed.connect(self._on_model_changed)
        self.device.changed.connect(self._on_device_changed)
        self.image.changed.connect(self._on_image_changed)
        self.run_button.changed.connect(self.run)
        self._store.new_weights.connect(self._on_new_weights)
        self.cancel_button.changed.connect(self.cancel)
        follow_layers(viewer, self._refresh_layers)
        self._on_image_changed()
        dockable(self, "predict")

    # ---- choices -------------------------------------------------------
    def _model_choices(self, _=None):
        return self._store.choices()

    def _image_choices(self, _=None):
        from napari.layers import Image

        return layer_choices(self._viewer, (Image,))

    def _precision_choices(self, _=None):
        return precision_choices(self.device.value if hasattr(self, "device") else AUTO, inference=True)

    def _refresh_layers(self, _=None):
        self.image.reset_choices()

    def reset_choices(self, *_) -> None:
        """Refresh every picker, keeping the chosen weights (magicgui would drop a
        value whose label changed, e.g. from "cached" to "loaded")."""
        value = self.model.value
        self._resetting = True
        try:
            super().reset_choices()
            if value in [v for _, v in self._store.choices()]:
                self.model.value = value
        finally:
            self._resetting = False

    def refresh_models(self) -> None:
        """Re-read the model folder and cache states (e.g. after fine-tuning)."""
        self.reset_choices()

    def _on_new_weights(self, path: str) -> None:
        """A fine-tuned checkpoint was saved: offer it, selected, ready to Run."""
        self.refresh_models()
        if path in [v for _, v in self._store.choices()]:
            self.model.value = path

    def add_weights_file(self, path) -> None:
        """Offer a weights file in the picker and select it."""
        source = self._store.add_file(path)
        self._store.forget(source)  # the file may have changed since it was loaded
        self.refresh_models()
        self.model.value = source

    def _on_model_changed(self, value):
        if self._resetting:
            return
        if value != OPEN_FILE:
            self._last_model = value
            self.explain_auto()
            return
        if not self.ask_weights_file() and self._last_model is not None:
            self.model.value = self._last_model

    def _on_device_changed(self, _=None) -> None:
        self.precision.reset_choices()
        self.explain_auto()

    def explain_auto(self) -> str:
        """The precision picker's tooltip: what "auto" takes here for the chosen
        weights, and why (the rule of :func:`napari_resjnd.core.precision.choose`)."""
        from ..core.devices import resolve_device
        from ..core.precision import choose

        try:
            device = resolve_device(self.device.value)
        except ResJNDError:
            return ""
        c = choose(AUTO, device, inference=True, registry_weights=_registry_weights(self.model.value))
        self.precision.tooltip = f"auto here: {c.precision} ({c.reason}); fp32 reproduces the authors' maps"
        return self.precision.tooltip

    def ask_weights_file(self) -> bool:
        """A file dialog for a weights file; True when one was chosen (and selected)."""
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self.native, "Open ResJND weights", "", "Weights (*.pth *.pt *.safetensors);;All files (*)"
        )
        if path:
            self.add_weights_file(path)
            self.weights_help.visible = False
        return bool(path)

    def copy_download_link(self, _=None) -> None:
        """Put the missing weights' download link on the clipboard."""
        from qtpy.QtWidgets import QApplication

        entry = REGISTRY[self._missing_weights or DEFAULT_WEIGHTS]
        clipboard = QApplication.clipboard()
        if clipboard is None:  # no Qt application: nothing to copy to
            self.status.value = f"download the file, put it in the cache folder, then Run ({entry.url})"
            return
        clipboard.setText(entry.url)
        self.status.value = f"link copied: download the file, put it in the cache folder, then Run ({entry.url})"

    def open_cache_folder(self, _=None) -> None:
        """Show the weights cache folder in the file manager (made if missing)."""
        from qtpy.QtCore import QUrl
        from qtpy.QtGui import QDesktopServices

        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        self.status.value = f"cache folder: {folder}"

    def _on_image_changed(self, _=None):
        layer = self.image.value
        lead = 0 if layer is None else layer.ndim - 2
        self.scope.enabled = lead > 0

    # ---- running -------------------------------------------------------
    def settings(self) -> PredictSettings:
        outputs = tuple(
            name for name, box in zip(_layers.OUTPUTS, (self.show_cpl, self.show_residual, self.show_jnd)) if box.value
        )
        return PredictSettings(
            weights=self.model.value,
            device=self.device.value,
            precision=self.precision.value,
            tile=self.tile.value or None,
            outputs=outputs,
            scope=self.scope.value,
        )

    def _input(self, layer, scope: str):
        """(array, plane index or None) for the chosen scope."""
        lead = layer.ndim - 2
        if lead == 0 or scope == "whole stack":
            return np.asarray(layer.data), None
        step = self._viewer.dims.current_step
        world = [step[d] for d in range(len(step) - layer.ndim, len(step) - 2)]
        idx = tuple(
            int(np.clip(round((w - t) / s), 0, n - 1))
            for w, t, s, n in zip(world, layer.translate[:lead], layer.scale[:lead], layer.data.shape[:lead])
        )
        return np.asarray(layer.data[idx]), idx

    @property
    def busy(self) -> bool:
        """True from Run until the last result layer is in the viewer."""
        return self.runner.busy

    def run(self, layer=None) -> None:
        """Start a run on ``layer`` (default: the picked layer)."""
        if self.busy:  # a run (or the adding of its layers) is going on: leave it be
            return
        layer = self.image.value if layer is None else layer
        settings = self.settings()
        plane: list[tuple[int, ...] | None] = [None]
        self._close_preview()

        def make_args() -> tuple[object, ...]:
            problem = check_layer(layer)
            if problem is None and not settings.outputs:
                problem = "nothing to add: tick CPL, residual or JND"
            if problem is None and settings.weights in (None, OPEN_FILE):
                problem = "choose weights first"
            if problem:
                raise ResJNDError(problem)
            data, plane[0] = self._input(layer, settings.scope)
            run = replace(settings, first=self._view_centre(layer))
            return self._store, run, data, bool(layer.rgb)

        self.runner.launch(
            make_args,
            compute,
            on_value=lambda pred: self._show(pred, layer, settings, plane[0]),
            on_event=lambda ev: self._paint(ev, layer, settings, plane[0]),
            on_failure=self._on_failure,
            on_end=lambda out: None if out.ok else self._close_preview(),
        )

    def _view_centre(self, layer) -> tuple[float, float] | None:
        """The (y, x) pixel of ``layer`` at the centre of the view: its tiles run first."""
        world = list(self._viewer.dims.point)
        scene = getattr(self._viewer, "scene", None)  # napari >= 0.9; before: viewer.camera
        camera = scene.camera if scene is not None else self._viewer.camera
        world[-2:] = list(camera.center)[-2:]
        y, x = layer.world_to_data(world)[-2:]
        return float(y), float(x)

    def _paint(self, ev, layer, settings: PredictSettings, plane) -> None:
        if not isinstance(ev, TilePreview):
            return
        if self._preview is None:
            self._preview = LivePreview(self._viewer, layer, settings.outputs, bool(layer.rgb), plane)
        self._preview.paint(ev)

    def _close_preview(self) -> None:
        if self._preview is not None:
            self._preview.close()
            self._preview = None

    def cancel(self, _=None) -> None:
        self.runner.cancel()

    def _on_failure(self, outcome: Outcome) -> bool:
        self.refresh_models()
        if not outcome.missing_weights:
            return False
        self._missing_weights = outcome.missing_weights
        self.weights_help.visible = True
        self.runner.report(
            f"could not get the weights {outcome.missing_weights} (offline, or "
            "the download failed): open a weights file, or copy the link and put the file in the "
            "cache folder",
            detail=outcome.error,
        )
        return True

    def _show(self, pred: Prediction, layer, settings: PredictSettings, plane) -> None:
        self.refresh_models()  # "will download" -> "loaded"
        self.weights_help.visible = False
        self.status.value = "adding layers…"
        pred.metadata["plane"] = list(plane) if plane is not None else "all"
        pending = [
            (name, data, kw)
            for name, (data, kw) in _layers.layer_data(pred, layer, bool(layer.rgb), plane).items()
            if name.split(" ")[0] in settings.outputs
        ]
        m = pred.metadata
        self.runner.hold()
        self._add_next(
            layer,
            pending,
            (
                f"done in {m['seconds']:.1f} s ({m['device']}, {m['precision']}); "
                f"JND mean {pred.jnd.mean():.2f}, max {pred.jnd.max():.2f}"
            ),
        )

    def _add_next(self, source, pending: list, final_status: str) -> None:
        """Add one layer per event-loop turn: each napari layer insertion costs
        0.1-0.3 s of GUI time, so the viewer stays responsive between them."""
        from qtpy.QtCore import QTimer

        if not pending:
            self._close_preview()
            self.status.value = final_status
            self.runner.release()
            return
        name, data, kw = pending.pop(0)
        _layers.put_layer(self._viewer, source, name, data, kw)
        QTimer.singleShot(0, lambda: self._add_next(source, pending, final_status))

    def report_error(self, message: str) -> None:
        """A failure: status line, napari notification, log."""
        self.runner.report(message)


@functools.lru_cache(maxsize=32)
def _registry_file(path: str, mtime_ns: int, size: int) -> bool:
    from ..core.weights import sha256_of

    return sha256_of(path) in {e.sha256 for e in REGISTRY.values()}


def _registry_weights(choice: object) -> bool:
    """Whether the chosen weights are a registry entry's, as inference decides it (by
    sha256): a registry name, or a file holding those weights (a local copy)."""
    if str(choice) in REGISTRY:
        return True
    try:
        st = os.stat(str(choice))
    except (OSError, ValueError):
        return False
    return st.st_size < 2**25 and _registry_file(str(choice), st.st_mtime_ns, st.st_size)  # the GUI thread hashes it
