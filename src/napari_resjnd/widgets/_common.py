"""Pieces every widget uses: layer pickers that follow the viewer, error reporting."""

from __future__ import annotations

from collections.abc import Callable


def layer_choices(viewer, kinds: tuple[type, ...], where: Callable = lambda layer: True) -> list:
    """(name, layer) pairs of the viewer's layers of ``kinds`` that pass ``where``."""
    return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kinds) and where(layer)]


def follow_layers(viewer, refresh: Callable) -> None:
    """Call ``refresh`` whenever layers are added, removed or reordered."""
    for event in ("inserted", "removed", "reordered"):
        getattr(viewer.layers.events, event).connect(lambda _=None: refresh())


def report_error(status, title: str, message: str) -> None:
    """Show ``message`` in the widget's status line and as a napari notification."""
    from napari.utils.notifications import show_error

    status.value = f"error: {message}"
    show_error(f"{title}: {message}")
