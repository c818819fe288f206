"""The Evaluate widget: JND-guided noise at equal PSNR for JND layers and the
classic models, noisy images as layers, a table (maps by target PSNR) and a plot
of the metric picked under the table.

Layout and glue only: the numbers come from :mod:`napari_resjnd.core.research.evaluate`,
the same functions ``resjnd evaluate`` uses, so both give the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, LineEdit, PushButton, Select, SpinBox, Table

from ..core.errors import ResJNDError
from ..core.maps import MODELS
from ..core.metrics import METRICS as METRIC_TABLE
from ..core.research import evaluate as ev
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
from ._evaluate_worker import EvaluateJob, Evaluation, evaluate, parse_targets
from ._runner import WorkerRunner

if TYPE_CHECKING:
    from napari.viewer import Viewer

LAYER = "layer:"


class EvaluateWidget(DockContainer):
    """ResJND: Evaluate JND maps. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.results: list = []
        self.image = ComboBox(label="image", choices=self._images)
        self.maps = Select(label="JND maps", choices=self._map_choices)
        self.psnr = LineEdit(label="target PSNR (dB)", value="26, 30")
        self.seed = SpinBox(label="seed", min=0, max=2**31 - 1, value=0)
        self.add_noisy = CheckBox(label="add noisy images as layers", value=True)
        self.run_button = PushButton(text="Evaluate")
        self.status = StatusLine("ready")
        self.metric = ComboBox(label="show", choices=[(METRIC_TABLE[m].title, m) for m in ev.METRICS], value="ssim")
        self.table = Table(value={"data": [], "index": [], "columns": ["map"]})
        self.table.read_only = True
        fit_table(self.table.native)
        self.runner = WorkerRunner("ResJND evaluation", self.status, self.run_button)
        pickers = [self.image, self.maps, self.psnr, self.seed, self.add_noisy]
        self.extend([*pickers, self.run_button, self.status, self.metric])
        add_full_width(self, "Metric table", self.table.native)
        self.plot = plot_widget("target PSNR (dB)", "SSIM")
        add_full_width(self, "Metric plot", self.plot)
        self._order: list[str] = []
        self.run_button.changed.connect(self.run)
        self.metric.changed.connect(lambda _=None: self._show_metric())
        #: False until the user changes the map selection; until then it follows the
        #: image and new JND layers (see :meth:`default_maps`).
        self._maps_picked = False
        self._setting_maps = False
        self.maps.changed.connect(self._on_maps_changed)
        self.image.changed.connect(self._on_image_changed)
        follow_layers(napari_viewer, self.reset_choices)
        self._apply_default_maps()
        dockable(self, "evaluate")

    def _images(self, _=None):
        from napari.layers import Image

        return layer_choices(self._viewer, (Image,), lambda layer: layer.ndim == 2 and "resjnd" not in layer.metadata)

    def _jnd_layers(self) -> list:
        from napari.layers import Image

        def is_jnd(layer):
            return not layer.rgb and layer.ndim == 2 and layer.metadata.get("resjnd", {}).get("output") == "jnd"

        return [layer for _, layer in layer_choices(self._viewer, (Image,), is_jnd)]

    def _map_choices(self, _=None):
        layers = [(f"layer: {layer.name}", LAYER + layer.name) for layer in self._jnd_layers()]
        return (
            layers
            + [(m, m) for m in MODELS]
            + [("uniform (JND = 1)", "uniform"), ("shuffled (first map, permuted)", "shuffled")]
        )

    def default_maps(self) -> list[str]:
        """One click evaluates: the newest JND layer made from the chosen image
        (the top-most in the layer list), every classic model and both controls."""
        source = self.image.value
        mine = [
            layer
            for layer in self._jnd_layers()
            if source is not None and layer.metadata["resjnd"].get("source_layer") == source.name
        ]
        return [LAYER + layer.name for layer in mine[-1:]] + list(MODELS) + ["uniform", "shuffled"]

    def _apply_default_maps(self) -> None:
        self._setting_maps = True
        try:
            self.maps.value = self.default_maps()
        finally:
            self._setting_maps = False

    def _on_maps_changed(self, _=None) -> None:
        if not self._setting_maps:
            self._maps_picked = True

    def _on_image_changed(self, _=None) -> None:
        self._maps_picked = False
        self._apply_default_maps()

    def reset_choices(self, *_) -> None:
        """Refresh the pickers; the maps keep the user's pick, or follow the defaults."""
        picked = list(self.maps.value) if self._maps_picked else None
        self._setting_maps = True
        try:
            super().reset_choices()
        finally:
            self._setting_maps = False
        if picked is None:
            self._apply_default_maps()
        else:
            values = [v for _, v in self._map_choices()]
            self._setting_maps = True
            try:
                self.maps.value = [v for v in picked if v in values]
            finally:
                self._setting_maps = False

    def job(self) -> EvaluateJob:
        layer = self.image.value
        if layer is None:
            raise ResJNDError("pick an image layer")
        chosen = list(self.maps.value)
        if not chosen:
            raise ResJNDError("pick at least one JND map")
        given = {
            v[len(LAYER) :]: np.asarray(self._viewer.layers[v[len(LAYER) :]].data)
            for v in chosen
            if v.startswith(LAYER)
        }
        names = tuple(v for v in chosen if not v.startswith(LAYER))
        return EvaluateJob(np.asarray(layer.data), names, given, parse_targets(self.psnr.value), self.seed.value)

    @property
    def busy(self) -> bool:
        """True while an evaluation runs."""
        return self.runner.busy

    def run(self, _=None) -> None:
        source = self.image.value
        self.runner.launch(lambda: (self.job(),), evaluate, on_value=lambda out: self._show(out, source))

    def _show_metric(self) -> None:
        """The table (a row per map, a column per target PSNR) and the plot of the
        metric picked in *show*."""
        import pyqtgraph as pg

        metric, results = str(self.metric.value), self.results
        targets = sorted({r.target_psnr for r in results})
        names = [n for n in self._order if any(r.jnd == n for r in results)]
        value = {(r.jnd, r.target_psnr): r.metrics[metric] for r in results}
        self.table.value = {
            "data": [[n, *(f"{value[n, t]:.4f}" if (n, t) in value else "n/a" for t in targets)] for n in names],
            "index": [],
            "columns": ["map", *(f"{t:g} dB" for t in targets)],
        }
        resize_rows(self.table.native)
        self.plot.clear()
        self.plot.setLabel("left", METRIC_TABLE[metric].title)
        for i, name in enumerate(names):
            points = [(r.target_psnr, r.metrics[metric]) for r in results if r.jnd == name]
            if not points:
                continue
            xs, ys = zip(*sorted(points), strict=True)
            self.plot.plot(
                list(xs),
                list(ys),
                pen=pg.mkPen(pg.intColor(i, len(names)), width=2),
                symbol="o",
                symbolSize=6,
                name=name,
            )

    def _show(self, out: Evaluation, source) -> None:
        results = out.results
        self.results, self._order = results, list(out.order)
        self._show_metric()
        if self.add_noisy.value:
            for r in results:
                name = f"{source.name} noisy {r.jnd} {r.target_psnr:g} dB"
                data = (r.noisy / 255).astype(np.float32)
                kw = {
                    "scale": source.scale,
                    "translate": source.translate,
                    "rgb": data.ndim == 3,
                    "contrast_limits": (0.0, 1.0),
                    "metadata": {
                        "resjnd": {
                            "output": "noisy",
                            "jnd": r.jnd,
                            "target_psnr": r.target_psnr,
                            "beta": r.beta,
                            "metrics": r.metrics,
                            "source_layer": source.name,
                        }
                    },
                }
                if name in self._viewer.layers:
                    self._viewer.layers[name].data = data
                    self._viewer.layers[name].metadata = kw["metadata"]
                else:
                    self._viewer.add_image(data, name=name, visible=False, **kw)
        best = max(results, key=lambda r: r.metrics["ssim"])
        left_out = sorted({name for name, _, _ in out.skipped})
        note = f"; left out (noise cannot reach the target): {', '.join(left_out)}" if left_out else ""
        self.status.value = (
            f"done: {len(results)} noisy images; best SSIM {best.metrics['ssim']:.4f} ({best.jnd}){note}"
        )

    def report_error(self, message: str) -> None:
        """A failure: status line, napari notification, log."""
        self.runner.report(message)
