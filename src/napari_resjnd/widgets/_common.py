"""Pieces every widget uses: layer pickers that follow the viewer, error
reporting, a status line that never widens its dock, and the dock behaviour
(bounded width, scrolling, ResJND docks tabbed together)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from magicgui.widgets import Container, Label, SpinBox

#: Width bounds of every ResJND widget (px): wide enough for its labels and
#: pickers, narrow enough that four docked widgets leave the canvas most of a
#: 1280-px window.
MIN_WIDTH, MAX_WIDTH = 260, 340
#: A status line shows at most this many characters; the rest is in the tooltip.
STATUS_CHARS = 180
#: Words longer than this (paths, URLs, hashes) are shortened in the middle.
WORD_CHARS = 40


def layer_choices(viewer, kinds: tuple[type[Any], ...], where: Callable[[Any], bool] = lambda layer: True) -> list:
    """(name, layer) pairs of the viewer's layers of ``kinds`` that pass ``where``."""
    return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kinds) and where(layer)]


def source_images(viewer, where: Callable[[Any], bool] = lambda layer: True) -> list:
    """(name, layer) pairs of the viewer's 2-D image layers that are inputs, not
    results this package made (those carry "resjnd" metadata), and pass ``where``."""
    from napari.layers import Image

    return layer_choices(
        viewer, (Image,), lambda layer: layer.ndim == 2 and "resjnd" not in layer.metadata and where(layer)
    )


def plot_widget(x_label: str, y_label: str) -> Any:
    """A pyqtgraph plot as the widgets show one: labelled axes, a legend, 180 px high."""
    import pyqtgraph as pg

    plot = pg.PlotWidget(background=None)
    plot.setMinimumHeight(180)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.addLegend(offset=(10, 10))
    return plot


def follow_layers(viewer, refresh: Callable) -> None:
    """Call ``refresh`` whenever layers are added, removed or reordered."""
    for event in ("inserted", "removed", "reordered"):
        getattr(viewer.layers.events, event).connect(lambda _=None: refresh())


def short_text(message: str, limit: int = STATUS_CHARS, word: int = WORD_CHARS) -> str:
    """``message`` for a status line: long words shortened in the middle
    (``/home/me/…/model.pth``), the whole cut at ``limit`` characters."""
    half = (word - 1) // 2
    words = [w if len(w) <= word else f"{w[:half]}…{w[-half:]}" for w in str(message).split(" ")]
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class StatusLine(Label):
    """A status label that wraps, shows a shortened text and never asks its dock
    for more width; ``value`` and the tooltip keep the full message."""

    def __init__(self, value: str = "ready", label: str = "status"):
        super().__init__(label=label, value=value)
        from qtpy.QtWidgets import QSizePolicy

        self.native.setWordWrap(True)
        self.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.native.setMinimumWidth(0)

    @property
    def value(self) -> str:
        return getattr(self, "_full", "")

    @value.setter
    def value(self, text: str) -> None:
        self._full = str(text)
        Label.value.fset(self, short_text(self._full))  # type: ignore[attr-defined]
        self.tooltip = self._full if self._full != short_text(self._full) else None


def report_error(status: StatusLine, title: str, message: str, detail: str | None = None) -> None:
    """Show ``message`` in the widget's status line (shortened, wrapped) and, with
    its ``detail`` (long paths, URLs, hashes), in the tooltip and a napari notification."""
    from napari.utils.notifications import show_error

    status.value = f"error: {message}"
    if detail:
        status.tooltip = f"{message}\n\n{detail}"
    show_error(f"{title}: {message}" + (f" ({detail})" if detail else ""))


class DockContainer(Container):
    """A labelled, scrollable Container as napari should dock it.

    napari docks a magicgui widget's ``native``, which for a scrollable
    Container is the inner widget, taken out of its scroll area. Here ``native``
    is the scroll area itself, so a tall widget scrolls inside its dock instead
    of growing the main window; ``body`` is the inner widget with the layout.
    """

    def __init__(self, **kwargs):
        super().__init__(labels=True, scrollable=True, **kwargs)

    @property
    def native(self):
        return self.root_native_widget

    @property
    def body(self):
        return self.root_native_widget.widget()


_DOCKED: weakref.WeakSet = weakref.WeakSet()


def dockable(widget: DockContainer, name: str) -> None:
    """Make a ResJND widget a good dock citizen: bounded width, pickers that do not
    grow with long item texts, and, once napari has docked it, a tab beside the
    other ResJND docks of the same window (so four widgets take one dock's room).
    Being a :class:`DockContainer`, its height never grows the window either."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtWidgets import QComboBox

    native = widget.native  # the scroll area napari docks
    native.setObjectName(f"napari-resjnd-{name}")
    native.setMinimumWidth(MIN_WIDTH)
    native.setMaximumWidth(MAX_WIDTH)
    for combo in widget.body.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        combo.currentTextChanged.connect(combo.setToolTip)  # the whole choice, where the box cuts it
        combo.setToolTip(combo.currentText())
    # Never hide a control: a body wider than the dock scrolls sideways too.
    native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    widget.body.layout().addStretch(1)  # rows at the top, not spread over a tall dock
    _DOCKED.add(native)
    QTimer.singleShot(0, lambda: _tabify(native))


def _dock_of(native):
    from qtpy.QtWidgets import QDockWidget

    parent = native.parent()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parent()
    return parent


def _tabify(native) -> None:
    """Put ``native``'s dock in a tab beside another ResJND dock of its window."""
    try:
        dock = _dock_of(native)
    except RuntimeError:  # the widget was deleted before the event loop turned
        return
    if dock is None or dock.isFloating():
        return
    window = dock.parent()
    area = window.dockWidgetArea(dock)
    for other in list(_DOCKED):
        if other is native:
            continue
        try:
            other_dock = _dock_of(other)
        except RuntimeError:
            continue
        if (
            other_dock is None
            or other_dock is dock
            or other_dock.parent() is not window
            or other_dock.isFloating()
            or not other_dock.isVisible()
            or window.dockWidgetArea(other_dock) != area
        ):
            continue
        if dock not in window.tabifiedDockWidgets(other_dock):
            window.tabifyDockWidget(other_dock, dock)
        dock.show()
        dock.raise_()
        return


def auto_size(label: str, maximum: int, step: int, tooltip: str) -> SpinBox:
    """A size picker in pixels whose 0 means "automatic" (tiles, patches)."""
    return SpinBox(label=label, min=0, max=maximum, step=step, value=0, tooltip=tooltip)
