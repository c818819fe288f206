"""How a visibility test is presented: the stimuli alone on a uniform mid-grey
full-screen canvas, napari's docks, menus, status bar, sliders and overlays (text,
scale bar, axes) hidden; and napari restored exactly as it was afterwards (window
state and geometry, docks, background, overlays).

Observers expect it (ITU-R BT.500 and P.910 ask for a uniform grey surround): a
bright or busy surround changes what is seen, and napari's chrome is both. No text
is drawn during the trials: the question and the keys are given before the test,
and a text overlay costs a redraw of its glyphs in every frame (measured: with
software OpenGL it slowed an 8 Hz flicker to 6.5 Hz)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

#: The surround's grey level (0-255): the same mid-grey as the gap between the two halves.
SURROUND = 128


class Presentation:
    """:meth:`enter` before the first trial, :meth:`leave` at the end."""

    def __init__(self, viewer: Any, grey: int = SURROUND) -> None:
        self._viewer = viewer
        self._grey = grey
        self._saved: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def _window(self) -> Any:
        with contextlib.suppress(AttributeError):
            return self._viewer.window._qt_window
        return None

    def enter(self) -> None:
        """Hide everything but the canvas, show it full screen on mid-grey."""
        if self._saved is not None:
            return
        from qtpy.QtWidgets import QDockWidget

        window, canvas = self._window(), getattr(self._viewer, "canvas", None)
        saved: dict[str, Any] = {"background": getattr(canvas, "background_color_override", None), "overlays": []}
        for name in ("text", "scale_bar", "axes"):
            overlay = getattr(getattr(canvas, "overlays", None), name, None)
            if overlay is None:  # napari < 0.9
                overlay = getattr(self._viewer, f"{name}_overlay" if name == "text" else name, None)
            if overlay is not None and getattr(overlay, "visible", False):
                saved["overlays"].append(overlay)
                overlay.visible = False
        if window is not None:
            saved.update(
                fullscreen=window.isFullScreen(),
                geometry=window.saveGeometry(),
                docks=[d for d in window.findChildren(QDockWidget) if d.isVisible()],
                menubar=window.menuBar().isVisible(),
                statusbar=window.statusBar().isVisible(),
                dims=self._dims_visible(),
            )
            for dock in saved["docks"]:
                dock.hide()
            window.menuBar().hide()
            window.statusBar().hide()
            self._set_dims_visible(False)
            window.showFullScreen()
        if canvas is not None and hasattr(canvas, "background_color_override"):
            g = self._grey / 255
            canvas.background_color_override = (g, g, g, 1.0)
        self._saved = saved
        self.focus()

    def focus(self) -> None:
        """Keys go to the canvas, where the test's key bindings are."""
        with contextlib.suppress(AttributeError, RuntimeError):
            self._viewer.window._qt_viewer.canvas.native.setFocus()

    def leave(self) -> None:
        """napari as it was before :meth:`enter`."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        canvas, window = getattr(self._viewer, "canvas", None), self._window()
        if canvas is not None and hasattr(canvas, "background_color_override"):
            canvas.background_color_override = saved["background"]
        for overlay in saved["overlays"]:
            overlay.visible = True
        if window is None or "geometry" not in saved:
            return
        with contextlib.suppress(RuntimeError):  # the window may be closing
            if not saved["fullscreen"]:
                window.showNormal()
            window.restoreGeometry(saved["geometry"])
            window.menuBar().setVisible(saved["menubar"])
            window.statusBar().setVisible(saved["statusbar"])
            self._set_dims_visible(saved["dims"])
            for dock in saved["docks"]:
                dock.show()

    def _dims_visible(self) -> bool:
        with contextlib.suppress(AttributeError, RuntimeError):
            return bool(self._viewer.window._qt_viewer.dims.isVisible())
        return False

    def _set_dims_visible(self, on: bool) -> None:
        with contextlib.suppress(AttributeError, RuntimeError):
            self._viewer.window._qt_viewer.dims.setVisible(on)


def side_by_side(left: np.ndarray, right: np.ndarray, gap_px: int = 16, grey: int = SURROUND) -> np.ndarray:
    """Two H x W x 3 stimuli ``gap_px`` grey pixels apart."""
    gap = np.full((left.shape[0], gap_px, 3), grey, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


def one_to_one(viewer: Any, layer: Any, canvas: Any) -> list[str]:
    """Zoom to one image pixel per screen pixel, nearest interpolation, centred;
    returns what still stands in the way."""
    layer.interpolation2d = "nearest"
    ratio = float(canvas.devicePixelRatioF()) if canvas is not None else 1.0
    scene = getattr(viewer, "scene", None)  # napari >= 0.9 moved the camera there
    camera = scene.camera if scene is not None else viewer.camera
    camera.zoom = 1.0 / ratio
    h, w = layer.data.shape[:2]
    camera.center = (h / 2 - 0.5, w / 2 - 0.5)
    problems = []
    if tuple(layer.scale[-2:]) != (1.0, 1.0):
        problems.append(f"layer scale {tuple(layer.scale)} is not 1")
    if abs(camera.zoom * ratio - 1) > 1e-6:
        problems.append(f"zoom {camera.zoom:g} at device pixel ratio {ratio:g}")
    if layer.interpolation2d != "nearest":
        problems.append(f"interpolation {layer.interpolation2d}")
    if canvas is not None and (w / ratio > canvas.width() or h / ratio > canvas.height()):
        problems.append(
            f"the canvas ({canvas.width()} x {canvas.height()} px) is smaller than the stimulus "
            f"({w / ratio:g} x {h / ratio:g}): use a smaller image or a larger screen"
        )
    return problems
