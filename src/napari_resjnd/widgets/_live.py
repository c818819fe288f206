"""Results that fill in while a run goes on: each finished tile is painted into
"<image> JND (computing)" layers (and CPL, residual) at once, so the part of a
big image the user looks at shows in seconds. They are preview layers beside any
earlier results: the run's final layers replace them when it ends (exactly what
a run without preview gives), and a cancelled or failed run removes them."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _layers
from ._predict_worker import TilePreview


class LivePreview:
    """Preview layers of one run's outputs, painted tile by tile; unfinished pixels are 0."""

    SUFFIX = " (computing)"

    def __init__(self, viewer: Any, source: Any, outputs: tuple[str, ...], rgb: bool, plane: tuple[int, ...] | None):
        self._viewer, self._source, self._rgb = viewer, source, rgb
        self._outputs, self._plane = outputs, plane
        self._arrays: dict[str, np.ndarray] = {}
        self._layers: dict[str, Any] = {}
        self._jnd_limit = 1e-6

    def paint(self, ev: TilePreview) -> None:
        """Write the tile into every shown output and refresh those layers."""
        if not self._arrays:
            self._create(ev.size)
        y0, y1, x0, x1 = ev.box
        values = {
            "CPL": ev.cpl if self._rgb else ev.cpl.mean(-1),
            "residual": ev.residual.mean(-1),
            "JND": ev.jnd,
        }
        for name, arr in self._arrays.items():
            arr[..., y0:y1, x0:x1, :] = values[name][..., None] if name != "CPL" or not self._rgb else values[name]
            if name in self._layers:
                self._layers[name].refresh()
        self._add_one_layer()
        if "JND" in self._layers and ev.jnd.size:
            self._jnd_limit = max(self._jnd_limit, float(np.percentile(ev.jnd, 99.5)))
            self._layers["JND"].contrast_limits = (0.0, self._jnd_limit)

    def _create(self, size: tuple[int, int]) -> None:
        h, w = size
        lead = (1,) * len(self._plane) if self._plane is not None else ()
        for name in ("JND", "CPL", "residual"):  # the JND shows first
            if name in self._outputs:
                channels = 3 if name == "CPL" and self._rgb else 1
                # a trailing length-1 axis lets one slice assignment serve every output
                self._arrays[name] = np.zeros((*lead, h, w, channels), np.float32)

    def _add_one_layer(self) -> None:
        """Add the next output's layer, at most one per tile: each insertion is
        0.1-0.3 s of napari's GUI work, so the viewer stays responsive."""
        missing = [n for n in self._arrays if n not in self._layers]
        if not missing:
            return
        name, full = missing[0], self._arrays[missing[0]]
        looks = {
            "CPL": {"rgb": self._rgb, "contrast_limits": (0.0, 1.0)},
            "residual": {"rgb": False, "colormap": _layers.RESIDUAL_COLORMAP, "contrast_limits": (-8.0, 8.0)},
            "JND": {"rgb": False, "colormap": _layers.JND_COLORMAP, "contrast_limits": (0.0, 1.0)},
        }
        data = full if full.shape[-1] == 3 else full[..., 0]
        kw = {**looks[name], **_layers.geometry(self._source, self._plane)}
        kw["metadata"] = {"resjnd": {"output": name.lower(), "preview": True}}
        self._layers[name] = _layers.put_layer(self._viewer, self._source, name + self.SUFFIX, data, kw)

    def close(self) -> None:
        """Remove the preview layers (the final ones are in, or the run ended without any)."""
        for layer in self._layers.values():
            if layer in self._viewer.layers:
                self._viewer.layers.remove(layer)
        self._layers.clear()
        self._arrays.clear()
