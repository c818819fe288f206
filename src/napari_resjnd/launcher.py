"""`resjnd gui`: napari with the Predict widget docked and images (or a sample) open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PLUGIN = "napari-resjnd"
WIDGET = "Predict JND (ResJND)"


def open_viewer(images: Sequence[str] = (), weights: str | None = None, show: bool = True) -> tuple[Any, Any]:
    """A viewer with the widget docked and ``images`` loaded; returns (viewer, widget)."""
    import napari

    from .core.images import load_image

    viewer = napari.Viewer(show=show)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    if images:
        from pathlib import Path

        for path in images:
            image = load_image(path)
            viewer.add_image(image.data, name=Path(path).stem, rgb=image.rgb)
    else:
        viewer.open_sample(PLUGIN, "astronaut")
    widget.refresh_models()
    if weights:
        from .core.weights import REGISTRY

        if weights in REGISTRY:
            widget.model.value = weights
        else:
            widget.add_weights_file(weights)
    widget.image.value = viewer.layers[-1]
    return viewer, widget


def launch(images: Sequence[str] = (), weights: str | None = None) -> None:
    import napari

    open_viewer(images, weights)
    napari.run()
