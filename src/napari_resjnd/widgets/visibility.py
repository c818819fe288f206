"""The Visibility widget: where a distortion is visible, from any two image layers
(pristine and distorted, e.g. a coded image) and a JND model: a heat overlay on
the distorted layer and ``p_detect`` in the status line.

Layout and glue only: the numbers come from :mod:`napari_resjnd.core.visibility.detection`,
the same function ``resjnd visibility map`` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, PushButton

from ..core.maps import SOURCES
from ..core.visibility.detection import Visibility
from ._common import DockContainer, StatusLine, dockable, follow_layers, source_images
from ._runner import WorkerRunner
from ._visibility_worker import VisibilityJob, predict_visibility

if TYPE_CHECKING:
    from napari.viewer import Viewer

#: What the model picker offers: ResJND, the classic models, the uniform control.
MODEL_CHOICES = tuple(SOURCES)


def overlay_name(distorted: str) -> str:
    return f"{distorted} visibility"


class VisibilityWidget(DockContainer):
    """ResJND: Visibility map. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.pristine = ComboBox(label="pristine", choices=self._images)
        self.distorted = ComboBox(label="distorted", choices=self._images)
        self.model = ComboBox(label="JND model", choices=list(MODEL_CHOICES), value="yang2005")
        self.run_button = PushButton(text="Predict visibility")
        self.stop_button = PushButton(text="Stop")
        self.status = StatusLine("pick a pristine and a distorted image")
        self.runner = WorkerRunner("ResJND visibility", self.status, self.run_button, self.stop_button)
        #: The last result, for scripts and tests.
        self.result: Visibility | None = None
        self.extend([self.pristine, self.distorted, self.model, self.run_button, self.stop_button, self.status])
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(lambda _=None: self.runner.cancel())
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "visibility")

    def _images(self, _=None):

        return source_images(self._viewer, lambda layer: not layer.name.endswith(" visibility"))

    def run(self, _=None) -> None:
        p, d = self.pristine.value, self.distorted.value
        if p is None or d is None:
            self.runner.report("pick the pristine and the distorted image layers")
            return
        if p is d:
            self.runner.report("the pristine and the distorted image are the same layer: pick two")
            return
        if np.shape(p.data)[:2] != np.shape(d.data)[:2]:
            self.runner.report(
                f"{d.name!r} is {np.shape(d.data)[:2]}, {p.name!r} is {np.shape(p.data)[:2]}: "
                "they must be the same size"
            )
            return
        job = VisibilityJob(np.asarray(p.data), np.asarray(d.data), str(self.model.value))
        self.runner.start(predict_visibility, job, on_value=lambda v: self._show(v, d, p.name, job.model))

    def _show(self, vis: Visibility, distorted, pristine: str, model: str) -> None:
        self.result = vis
        name = overlay_name(distorted.name)
        meta = {"resjnd": {"output": "visibility", "model": model, **vis.summary()}}
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data, layer.metadata = vis.probability, meta
        else:
            self._viewer.add_image(
                vis.probability,
                name=name,
                colormap="inferno",
                blending="additive",
                opacity=0.6,
                contrast_limits=(0, 1),
                scale=distorted.scale[-2:],
                translate=distorted.translate[-2:],
                metadata=meta,
            )
        text = f"p_detect {vis.p_detect:.3f} ({model}: {distorted.name!r} against {pristine!r})"
        self.status.value = text
        self._viewer.status = text
