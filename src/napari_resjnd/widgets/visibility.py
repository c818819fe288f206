"""The Visibility widget: where a distortion is visible, from any two image layers
(pristine and distorted, e.g. a coded image), a JND model and the viewing
conditions: a heat overlay on the distorted layer and ``p_detect`` in the status
line; with a calibration file, the observers' alpha and beta; with ColorVideoVDP
installed, its JOD and heatmap beside the map.

Layout and glue only: the numbers come from :mod:`napari_resjnd.core.visibility`,
the functions ``resjnd visibility map`` uses.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, FileEdit, PushButton

from ..core.errors import ResJNDError
from ..core.maps import SOURCES
from ..core.visibility.detection import Visibility, VisibilityParams
from ..core.visibility.reference import INSTALL, Reference
from ._common import DockContainer, StatusLine, dockable, follow_layers, source_images
from ._runner import WorkerRunner
from ._viewing import ViewingFields
from ._visibility_worker import VisibilityJob, VisibilityResult, predict_visibility

if TYPE_CHECKING:
    from napari.viewer import Viewer

#: What the model picker offers: ResJND, the classic models, the uniform control.
MODEL_CHOICES = tuple(SOURCES)
#: Grey pixels between the distorted layer and the reference's heatmap beside it.
BESIDE_GAP = 16


def overlay_name(distorted: str) -> str:
    return f"{distorted} visibility"


def reference_name(distorted: str) -> str:
    return f"{distorted} ColorVideoVDP"


class VisibilityWidget(DockContainer):
    """ResJND: Visibility map. Docked in napari through ``napari.yaml``."""

    def __init__(self, napari_viewer: Viewer):
        super().__init__()
        self._viewer = napari_viewer
        self.pristine = ComboBox(label="pristine", choices=self._images)
        self.distorted = ComboBox(label="distorted", choices=self._images)
        self.model = ComboBox(label="JND model", choices=list(MODEL_CHOICES), value="yang2005")
        self.viewing = ViewingFields()
        self.calibration = FileEdit(label="calibration (optional)", mode=FileDialogMode.OPTIONAL_FILE, filter="*.json")
        has_cvvdp = find_spec("pycvvdp") is not None
        self.reference = CheckBox(
            text="ColorVideoVDP beside it",
            value=False,
            enabled=has_cvvdp,
            tooltip="the reference predictor's JOD and heatmap" if has_cvvdp else f"not installed: {INSTALL}",
        )
        self.run_button = PushButton(text="Predict visibility")
        self.stop_button = PushButton(text="Stop")
        self.status = StatusLine("pick a pristine and a distorted image")
        self.runner = WorkerRunner("ResJND visibility", self.status, self.run_button, self.stop_button)
        #: The last result, for scripts and tests.
        self.result: Visibility | None = None
        self.reference_result: Reference | None = None
        self.extend(
            [
                self.pristine,
                self.distorted,
                self.model,
                self.calibration,
                self.reference,
                self.run_button,
                self.stop_button,
                self.status,
            ]
        )
        self.viewing.fold_into(self, 3)  # under the model
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(lambda _=None: self.runner.cancel())
        follow_layers(napari_viewer, self.reset_choices)
        dockable(self, "visibility")

    def _images(self, _=None):
        return source_images(self._viewer, lambda layer: not layer.name.endswith((" visibility", " ColorVideoVDP")))

    def _params(self, model: str) -> tuple[VisibilityParams, str]:
        """The parameters (a calibration's where one is picked) and how they were chosen."""
        from ..core.visibility.calibration import select

        path = str(self.calibration.value)
        viewing = self.viewing.value_or_error()
        if path in ("", "."):
            return VisibilityParams(), "uncalibrated"
        if not Path(path).is_file():
            raise ResJNDError(f"calibration {path}: no such file")
        cal = select(path, model, viewing)
        return cal.params(), f"calibrated: alpha {cal.alpha:.3g}, beta {cal.beta:g}"

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
        model = str(self.model.value)
        try:
            viewing = self.viewing.value_or_error()
            params, how = self._params(model)
        except ResJNDError as e:
            self.runner.report(str(e))
            return
        job = VisibilityJob(
            np.asarray(p.data),
            np.asarray(d.data),
            model,
            viewing=viewing,
            params=params,
            reference=bool(self.reference.value),
        )
        self.runner.start(predict_visibility, job, on_value=lambda v: self._show(v, d, p.name, model, how))

    def _show(self, result: VisibilityResult, distorted, pristine: str, model: str, how: str) -> None:
        vis = result.visibility
        self.result, self.reference_result = vis, result.reference
        meta = {"resjnd": {"output": "visibility", "model": model, "calibration": how, **vis.summary()}}
        self._layer(overlay_name(distorted.name), vis.probability, distorted, meta, colormap="inferno")
        text = (
            f"p_detect {vis.p_detect:.3f}, mean visibility {vis.mean_visibility:.3f} ({model}, {how}; "
            f"{distorted.name!r} against {pristine!r}; {vis.viewing.ppd:.1f} px/degree)"
        )
        if result.reference is not None:
            ref = result.reference
            width = float(np.shape(distorted.data)[1]) * float(distorted.scale[-1])
            beside = (float(distorted.translate[-2]), float(distorted.translate[-1]) + width + BESIDE_GAP)
            meta_ref = {"resjnd": {"output": "visibility-reference", **ref.summary()}}
            top = max(0.1, float(ref.heatmap.max()))
            self._layer(
                reference_name(distorted.name), ref.heatmap, distorted, meta_ref, "magma", translate=beside, top=top
            )
            text += f"; ColorVideoVDP {ref.jod:.3f} JOD (10: no visible difference), heatmap beside it"
        self.status.value = text
        self._viewer.status = text

    def _layer(self, name, data, distorted, meta, colormap, translate=None, top: float = 1.0) -> None:
        overlay = translate is None
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data, layer.metadata, layer.contrast_limits = data, meta, (0, top)
            return
        self._viewer.add_image(
            data,
            name=name,
            colormap=colormap,
            blending="additive" if overlay else "translucent",
            opacity=0.6 if overlay else 1.0,
            contrast_limits=(0, top),
            scale=distorted.scale[-2:],
            translate=distorted.translate[-2:] if overlay else translate,
            metadata=meta,
        )
