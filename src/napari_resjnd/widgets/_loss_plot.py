"""A live plot of training and validation loss (pyqtgraph), fed by fine-tuning events."""

from __future__ import annotations

import math

from ..core.events import EpochDone, TrainingStep


class LossPlot:
    """Train loss per step and validation loss per epoch, on a log scale.

    ``native`` is the Qt widget to put in a layout; ``add_event`` takes the
    :class:`~napari_resjnd.core.events.TrainingStep` and
    :class:`~napari_resjnd.core.events.EpochDone` events of :func:`napari_resjnd.core.training.finetune.iter_finetune`.
    """

    def __init__(self) -> None:
        import pyqtgraph as pg

        self.native = pg.PlotWidget(background=None)
        self.native.setMinimumHeight(180)
        self.native.setLogMode(x=False, y=True)
        self.native.setLabel("bottom", "epoch")
        self.native.setLabel("left", "MSE")
        self.native.addLegend(offset=(-10, 10))
        self.train = self.native.plot([], [], pen=pg.mkPen("#4fa3ff", width=1), name="train (per step)")
        self.val = self.native.plot(
            [], [], pen=pg.mkPen("#ff9f1c", width=2), symbol="o", symbolSize=6, name="validation"
        )
        self.clear()

    def clear(self) -> None:
        self.train_x: list[float] = []
        self.train_y: list[float] = []
        self.val_x: list[float] = []
        self.val_y: list[float] = []
        self.train.setData([], [])
        self.val.setData([], [])

    def add_event(self, ev: TrainingStep | EpochDone) -> None:
        if isinstance(ev, TrainingStep) and ev.loss > 0 and math.isfinite(ev.loss):
            self.train_x.append(ev.epoch - 1 + ev.step / ev.steps)
            self.train_y.append(ev.loss)
            self.train.setData(self.train_x, self.train_y)
        elif isinstance(ev, EpochDone) and ev.val_loss is not None and ev.val_loss > 0:
            self.val_x.append(ev.epoch)
            self.val_y.append(ev.val_loss)
            self.val.setData(self.val_x, self.val_y)
