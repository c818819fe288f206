"""The Fine-tune widget: pristine and target layers (or a folder of pairs), an
optional Shapes/Labels annotation, hyperparameters, Start/Stop, a live loss plot.

Layout and glue only. Layers become plain arrays and boxes here (:func:`._regions.annotation`),
the worker (:mod:`._finetune_worker`) runs :func:`~napari_resjnd.core.training.finetune.iter_finetune`, and the new
checkpoint is announced through the shared :class:`~._models.ModelStore`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
    Widget,
)

from ..core.devices import device_choices
from ..core.errors import ResJNDError
from ..core.events import EpochDone, Event, TrainingStarted, TrainingStep
from ..core.precision import choices as precision_choices
from ..core.training.config import FINETUNE_CONFIG
from ..core.training.finetune import LAYERS, PRESETS, FinetuneConfig, FinetuneResult
from ..core.weights import models_dir
from ._common import DockContainer, StatusLine, add_full_width, auto_size, dockable, follow_layers, layer_choices
from ._finetune_worker import FinetuneJob, train
from ._loss_plot import LossPlot
from ._models import OPEN_FILE, STORE, ModelStore
from ._regions import annotation
from ._runner import WorkerRunner

if TYPE_CHECKING:
    from napari.viewer import Viewer

NONE = "(none: sample the whole image)"


class FinetuneWidget(DockContainer):
    """ResJND: Fine-tune. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer, store: ModelStore = STORE):
        super().__init__()
        self._viewer = napari_viewer
        self._store = store
        self._t0 = 0.0
        self._steps_done = 0
        self._steps_total = 1

        self.pristine = ComboBox(label="pristine", choices=self._images)
        self.target = ComboBox(label="target (CPL)", choices=self._images)
        self.annotation = ComboBox(label="patches from", choices=self._annotations)
        self.folder = FileEdit(
            label="or folder", mode=FileDialogMode.EXISTING_DIRECTORY, tooltip="DIR/data and DIR/label pairs"
        )
        self.weights = ComboBox(label="start from", choices=self._start_choices)
        self.out_name = LineEdit(label="save as", value=time.strftime("finetuned-%Y%m%d-%H%M"))
        training = self._training_controls()
        self.advanced = self._advanced_controls()
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, max=1)
        self.status = StatusLine("ready")
        self.plot = LossPlot()
        self.runner = WorkerRunner(
            "ResJND fine-tuning", self.status, self.start_button, self.stop_button, self.progress
        )
        buttons = Container(widgets=[self.start_button, self.stop_button], layout="horizontal", labels=False)
        self.extend([self.pristine, self.target, self.annotation, self.folder, self.weights, self.out_name, *training])
        from superqt import QCollapsible

        fold = QCollapsible("Advanced")
        fold.addWidget(self.advanced.native)
        self.body.layout().addWidget(fold)
        self.extend([buttons, self.progress, self.status])
        add_full_width(self, "Loss plot", self.plot.native)

        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "finetune")

    def _training_controls(self) -> list[Widget]:
        """The hyperparameters shown at once: preset, epochs, patch, batch, learning rate."""
        self.preset = ComboBox(label="preset", choices=list(PRESETS), value=FINETUNE_CONFIG.preset)
        self.epochs = SpinBox(label="epochs", min=1, max=10000, value=FINETUNE_CONFIG.epochs)
        self.patch = auto_size(
            "patch (0 = auto)", 1024, 8, "patch side in px; 0: 48, or the pairs' own size when all are one smaller size"
        )
        self.batch = SpinBox(label="batch", min=1, max=512, value=FINETUNE_CONFIG.batch)
        self.lr = FloatSpinBox(
            label="learning rate", min=0, max=1, step=1e-5, value=0, tooltip="0: the preset's learning rate"
        )
        self.lr.native.setSpecialValueText("preset")
        self.lr.native.setDecimals(6)
        return [self.preset, self.epochs, self.patch, self.batch, self.lr]

    def _advanced_controls(self) -> Container:
        """The hyperparameters folded under "Advanced": seed, validation, early stop,
        augmentation, frozen layers, device and precision."""
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=FINETUNE_CONFIG.seed)
        self.val_fraction = FloatSpinBox(
            label="validation share", min=0, max=0.9, step=0.05, value=FINETUNE_CONFIG.val_fraction
        )
        self.val_by = ComboBox(label="hold out", choices=["patches", "images"], value=FINETUNE_CONFIG.val_by)
        self.patience = SpinBox(
            label="patience (0 = off)",
            min=0,
            max=1000,
            value=FINETUNE_CONFIG.patience,
            tooltip="early stop after this many epochs without a better validation loss",
        )
        self.augment = CheckBox(label="flips and rotations", value=FINETUNE_CONFIG.augment)
        self.freeze = Select(label="freeze", choices=list(LAYERS), value=[])
        self.device = ComboBox(label="device", choices=device_choices(), value="auto")
        self.precision = ComboBox(label="precision", choices=precision_choices(), value="auto")
        controls: list[Widget] = [
            self.seed,
            self.val_fraction,
            self.val_by,
            self.patience,
            self.augment,
            self.freeze,
            self.device,
            self.precision,
        ]
        return Container(widgets=controls, labels=True)

    def _start_choices(self, _=None) -> list[tuple[str, str]]:
        """Weights to start from: the store's choices less its "Open weights file…" entry."""
        return [c for c in self._store.choices() if c[1] != OPEN_FILE]

    def _images(self, _=None):
        from napari.layers import Image

        return layer_choices(self._viewer, (Image,))

    def _annotations(self, _=None):
        from napari.layers import Labels, Shapes

        return [(NONE, None), *layer_choices(self._viewer, (Shapes, Labels))]

    def job(self) -> FinetuneJob:
        """The run the widget describes; raises ResJNDError with a message if it cannot run."""
        config = FinetuneConfig(
            epochs=self.epochs.value,
            patch=self.patch.value or None,
            batch=self.batch.value,
            preset=self.preset.value,
            lr=self.lr.value or None,
            seed=self.seed.value,
            val_fraction=self.val_fraction.value,
            val_by=self.val_by.value,
            augment=self.augment.value,
            freeze=tuple(self.freeze.value),
            patience=self.patience.value,
            device=self.device.value,
            precision=self.precision.value,
        )
        name = (self.out_name.value or "finetuned").strip()
        out = models_dir() / (name if name.endswith(".safetensors") else f"{name}.safetensors")
        if self.weights.value is None:
            raise ResJNDError("choose starting weights")
        folder = str(self.folder.value) if self.folder.value and str(self.folder.value) not in ("", ".") else None
        if folder:
            return FinetuneJob(self.weights.value, out, config, folder=folder)
        p, t = self.pristine.value, self.target.value
        if p is None or t is None:
            raise ResJNDError("pick a pristine and a target image layer, or a folder of pairs")
        if p is t:
            raise ResJNDError("the target must be another layer than the pristine image")
        if p.ndim != 2 or t.ndim != 2:
            raise ResJNDError("fine-tuning takes 2-D images (one plane of a stack: duplicate it first)")
        boxes, mask = annotation(self.annotation.value, p)
        return FinetuneJob(
            self.weights.value,
            out,
            config,
            np.asarray(p.data),
            np.asarray(t.data),
            p.name,
            tuple(boxes) if boxes else None,
            mask,
        )

    @property
    def busy(self) -> bool:
        """True while a run is going."""
        return self.runner.busy

    def start(self, _=None) -> None:
        self.runner.launch(
            lambda: (self.job(),), train, on_event=self._on_event, on_value=self._on_value, before=self._reset_display
        )

    def _reset_display(self) -> None:
        self.plot.clear()
        self._t0, self._steps_done, self._steps_total = time.perf_counter(), 0, 1

    def stop(self, _=None) -> None:
        self.runner.cancel("stopping after this step…")

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, TrainingStarted):
            self._steps_total = max(1, (ev.epochs - ev.start_epoch + 1) * ev.steps)
            self.runner.set_progress(0, self._steps_total)
            self.status.value = f"{ev.train_patches} training, {ev.val_patches} validation patches"
        elif isinstance(ev, TrainingStep):
            self._steps_done = min(self._steps_total, self._steps_done + 1)
            self.runner.set_progress(self._steps_done, self._steps_total)
            done = self._steps_done / self._steps_total
            eta = (time.perf_counter() - self._t0) * (1 - done) / max(done, 1e-9)
            self.status.value = (
                f"epoch {ev.epoch}, step {ev.step}/{ev.steps}, loss {ev.loss:.3e}, "
                f"{ev.patches_per_s:.1f} patches/s, ETA {eta:.0f} s"
            )
        elif isinstance(ev, EpochDone) and ev.val_loss is not None:
            self.status.value = f"epoch {ev.epoch}: validation loss {ev.val_loss:.4e}"
        if isinstance(ev, (TrainingStep, EpochDone)):
            self.plot.add_event(ev)

    def _on_value(self, result: FinetuneResult) -> None:
        scored = [e for e in result.history["epochs"] if e["val_loss"] is not None]
        best = (
            f"best validation loss {min(e['val_loss'] for e in scored):.4e} at epoch "
            f"{min(scored, key=lambda e: e['val_loss'])['epoch']}; "
            if scored
            else ""
        )
        assert result.checkpoint is not None
        self.status.value = f"{result.stopped}: {best}saved {result.checkpoint.name}"
        self._store.forget(str(result.checkpoint))
        self._store.new_weights.emit(str(result.checkpoint))

    def report_error(self, message: str) -> None:
        """A failure: status line, napari notification, log."""
        self.runner.report(message)
