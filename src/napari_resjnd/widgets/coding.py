"""The JND-guided coding widget: pick an image, a codec and JND models; a quality
slider codes the plain and the JND-guided pictures in a worker and adds the
decoded images as layers (same quality, and the same bit rate), with a live RD
plot and the BD-rate table.

Layout and glue only: the numbers come from :mod:`napari_resjnd.core.coding`, the
same functions ``resjnd compress`` uses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, LineEdit, PushButton, Select, Slider, Table

from ..core.codecs import CODECS, available_codecs, parse_qualities
from ..core.coding.prefilter import title, variants
from ..core.errors import ResJNDError
from ..core.events import Encoded
from ..core.maps import ALL
from ..core.metrics import METRICS
from ..core.weights import DEFAULT_WEIGHTS
from ._coding_worker import CodingJob, CodingResult, code
from ._common import (
    DockContainer,
    StatusLine,
    add_full_width,
    dockable,
    fit_table,
    follow_layers,
    layer_choices,
    plot_widget,
    resize_rows,
)
from ._models import STORE
from ._runner import WorkerRunner

if TYPE_CHECKING:
    from napari.viewer import Viewer

#: The BD-rate table's columns: one row per JND model and metric.
TABLE_COLUMNS = ("JND model", "metric", "BD-rate %")


class CodingWidget(DockContainer):
    """ResJND: JND-guided coding. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self._cache: dict = {}
        #: A Code press or slider move while a run was busy: the latest is run when it ends.
        self._pending = False
        #: The last run's result (for scripts and tests).
        self.result: CodingResult | None = None
        self.image = ComboBox(label="image", choices=self._images)
        codecs = available_codecs()
        self.codec = ComboBox(label="codec", choices=[(CODECS[c].title, c) for c in codecs], value=codecs[0])
        models = [(title(v), v) for n in ALL for v in variants(n)]
        self.models = Select(label="JND models", choices=models, value=["yang2005"])
        self.weights = LineEdit(label="ResJND weights", value=DEFAULT_WEIGHTS)
        self.sweep = LineEdit(label="RD sweep qualities", value="20,40,60,80,95")
        self.quality = Slider(label="quality", min=1, max=100, value=50, tracking=False)
        self.run_button = PushButton(text="Code")
        self.status = StatusLine("ready")
        self.table = Table(value={"data": [], "index": [], "columns": list(TABLE_COLUMNS)})
        self.table.read_only = True
        fit_table(self.table.native)
        self.runner = WorkerRunner("JND-guided coding", self.status, self.run_button)
        pickers = [self.image, self.codec, self.models, self.weights, self.sweep, self.quality]
        self.extend([*pickers, self.run_button, self.status])
        add_full_width(self, "BD-rate table", self.table.native)
        self.plot = plot_widget("bits per pixel", "SSIMULACRA2 (vs original)")
        add_full_width(self, "RD plot", self.plot)
        self.run_button.changed.connect(self.run)
        self.quality.changed.connect(self.run)
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "coding")

    def _images(self, _=None):
        from napari.layers import Image

        def codable(layer) -> bool:
            return layer.ndim == 2 and "resjnd" not in layer.metadata

        return layer_choices(self._viewer, (Image,), codable)

    def job(self) -> CodingJob:
        layer = self.image.value
        if layer is None:
            raise ResJNDError("pick an image layer")
        if not self.models.value:
            raise ResJNDError("pick at least one JND model")
        return CodingJob(
            image=np.asarray(layer.data),
            codec=self.codec.value,
            models=tuple(self.models.value),
            quality=int(self.quality.value),
            sweep=parse_qualities(self.sweep.value),
            weights=self.weights.value.strip() or DEFAULT_WEIGHTS,
        )

    @property
    def busy(self) -> bool:
        """True while a run is in progress."""
        return self.runner.busy

    def run(self, _=None) -> None:
        """Code at the slider's quality. A Code press or slider move while a run is
        busy is kept, and when the run ends the widget codes once more with what it
        shows then (so the last request is the one whose result stays on screen)."""
        if self.busy:
            self._pending = True
            return
        self._pending = False
        try:
            job = self.job()
        except ResJNDError as e:
            self.runner.report(str(e))
            return
        source = self.image.value
        started = self.runner.start(
            code, STORE, job, self._cache, on_value=lambda out: self._show(out, source, job), on_event=self._on_event
        )
        if started:
            # connected after the runner's own handler, so it runs once the runner is free
            self.runner.worker.finished.connect(self._run_pending)

    def _run_pending(self) -> None:
        if self._pending and not self.busy:
            self.run()

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, Encoded):
            self.status.value = f"RD sweep: {ev.codec} {ev.jnd} q{ev.quality} ({ev.done} of {ev.total})"
            self.runner.set_progress(ev.done, ev.total)

    def _show(self, out: CodingResult, source, job: CodingJob) -> None:
        self.result = out
        self._table(out)
        self._plot(out)
        for d in out.decoded:
            name = f"{source.name} {job.codec} {d.jnd} ({d.match})"
            info: dict[str, object] = {"output": "decoded", "codec": job.codec, "jnd": d.jnd, "match": d.match}
            info |= {"quality": d.quality, "bpp": d.bpp, "metrics": d.metrics, "source_layer": source.name}
            meta = {"resjnd": info}
            data = d.image if source.rgb else d.image[..., 0]
            if name in self._viewer.layers:
                self._viewer.layers[name].data = data
                self._viewer.layers[name].metadata = meta
            else:
                self._viewer.add_image(
                    data, name=name, rgb=source.rgb, scale=source.scale, translate=source.translate, metadata=meta
                )
        plain, m = out.decoded[0], out.perceptual
        self.status.value = (
            f"quality {job.quality}: plain {plain.bpp:.3f} bpp, {METRICS[m].title} {plain.metrics[m]:.1f}; "
            + "; ".join(
                f"{d.jnd} {d.bpp:.3f} bpp, {d.metrics[m]:.1f}" for d in out.decoded[1:] if d.match == "same quality"
            )
            + (f" ({out.notice})" if out.notice else "")
        )

    def _table(self, out: CodingResult) -> None:
        def fmt(v: float) -> str:
            return f"{v:+.2f}" if math.isfinite(v) else "n/a"

        self.table.value = {
            "data": [[str(r["jnd"]), str(r["metric"]), fmt(r["bd_rate_percent"])] for r in out.bd],
            "index": [],
            "columns": list(TABLE_COLUMNS),
        }
        resize_rows(self.table.native)

    def _plot(self, out: CodingResult) -> None:
        import pyqtgraph as pg

        self.plot.clear()
        self.plot.setLabel("left", f"{METRICS[out.perceptual].title} (vs original)")
        names = list(dict.fromkeys(p.jnd for p in out.points))
        for i, name in enumerate(names):
            curve = sorted((p.bpp, p.metrics[out.perceptual]) for p in out.points if p.jnd == name)
            xs, ys = zip(*curve, strict=True)
            pen = pg.mkPen(pg.intColor(i, len(names)), width=3 if name == "none" else 2)
            self.plot.plot(list(xs), list(ys), pen=pen, symbol="o", symbolSize=5, name=name)
        now = [d for d in out.decoded if d.match == "same quality"]
        self.plot.plot(
            [d.bpp for d in now], [d.metrics[out.perceptual] for d in now], pen=None, symbol="x", symbolSize=12
        )
