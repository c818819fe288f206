"""Pieces every widget uses: layer pickers that follow the viewer, error
reporting, a status line that never widens its dock, and the dock behaviour
(bounded width, no sideways scrolling, ResJND docks tabbed together)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from magicgui.widgets import Container, Label, SpinBox

#: Width bounds of every ResJND widget (px): wide enough for its labels and
#: pickers, narrow enough that the docked widgets (tabs of one dock) leave the
#: canvas most of a 1280-px window.
MIN_WIDTH, MAX_WIDTH = 320, 340
#: The label column is at most this wide (px); longer labels wrap at spaces.
LABEL_WIDTH = 100
#: The button of every file or folder picker (its field keeps the room; the tooltip says which).
BROWSE = "Browse…"
#: Lists (several-choice pickers) show at most this many rows and scroll for more.
LIST_ROWS = 7
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


def add_full_width(widget: DockContainer, title: str, native: Any) -> Any:
    """Put ``native`` (a table or a plot) under ``widget``'s rows, across the whole
    dock rather than in the narrow field column, in a section titled ``title``
    that a click folds away (a plot below the fold on a laptop screen costs
    nothing then). Returns the section."""
    from superqt import QCollapsible

    section = QCollapsible(title)
    section.setObjectName(f"section-{title}")
    section.addWidget(native)
    section.expand(animate=False)
    widget.body.layout().addWidget(section)
    return section


def fit_table(native: Any) -> None:
    """A read-only results table that fits its dock: columns share the width,
    headers and cells wrap, no row numbers, never a sideways scroll bar, and each
    cell shows its text as the widget formatted it (magicgui's own delegate would
    rewrite "+3.40" as "3.4000" and 0.05 as "5.000e-02")."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QStyledItemDelegate

    native.setItemDelegate(QStyledItemDelegate(native))
    native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    native.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    native.setWordWrap(True)
    native.verticalHeader().hide()
    header = native.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    header.setMinimumSectionSize(24)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap)
    native.setMinimumHeight(120)


def resize_rows(native: Any) -> None:
    """After new rows: each row as tall as its wrapped text."""
    native.resizeRowsToContents()


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

    def _unify_label_widths(self) -> None:
        super()._unify_label_widths()
        fit_labels(self)


def fit_labels(container: Container) -> None:
    """The label column of ``container`` at most :data:`LABEL_WIDTH` wide, longer
    labels wrapped; a row without a label (a row of buttons) spans the whole width."""
    rows = [w._labeled_widget() for w in container if hasattr(w, "_labeled_widget")]
    labels = [(row, row._label_widget.native) for row in rows if row is not None]
    texts = [label.text() for _, label in labels if label.text()]
    if not texts:
        return
    metrics = labels[0][1].fontMetrics()
    width = min(LABEL_WIDTH, max(metrics.horizontalAdvance(t) for t in texts) + 6)
    for row, label in labels:
        label.setWordWrap(True)
        label.setMinimumWidth(0)
        label.setFixedWidth(width)
        inner = row._inner_widget
        if isinstance(inner, Container) and inner.layout == "horizontal":
            inner.margins = (0, 0, 0, 0)  # a row of buttons or boxes lines up with the fields
            if not label.text():
                label.hide()
        browse = getattr(inner, "choose_btn", None)  # a file picker: its field gets the room
        if browse is not None and browse.text != BROWSE:
            browse.tooltip, browse.text = browse.text, BROWSE


_DOCKED: weakref.WeakSet = weakref.WeakSet()


def dockable(widget: DockContainer, name: str) -> None:
    """Make a ResJND widget a good dock citizen: bounded width, pickers that do not
    grow with long item texts, and, once napari has docked it, a tab beside the
    other ResJND docks of the same window (so four widgets take one dock's room).
    Being a :class:`DockContainer`, its height never grows the window either."""
    from qtpy.QtCore import Qt, QTimer
    from qtpy.QtWidgets import QComboBox, QWidget

    native = widget.native  # the scroll area napari docks
    native.setObjectName(f"napari-resjnd-{name}")
    native.setMinimumWidth(MIN_WIDTH)
    native.setMaximumWidth(MAX_WIDTH)
    for combo in widget.body.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)
        combo.currentTextChanged.connect(combo.setToolTip)  # the whole choice, where the box cuts it
        combo.setToolTip(combo.currentText())
    _fit_lists(widget.body)
    for inner in widget.body.findChildren(QWidget):  # folded sections (Advanced) have labels too
        mgui = getattr(inner, "_magic_widget", None)
        if isinstance(mgui, Container) and mgui.labels and mgui is not widget:
            fit_labels(mgui)
    # Never hide a control: were the body ever wider than the dock, it would scroll
    # sideways (tests/test_layout.py makes sure it never is).
    native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    widget.body.layout().addStretch(1)  # rows at the top, not spread over a tall dock
    _DOCKED.add(native)
    QTimer.singleShot(0, lambda: _tabify(native))


def _fit_lists(body: Any) -> None:
    """Several-choice lists wrap long names instead of scrolling sideways, and show
    at most :data:`LIST_ROWS` rows (they scroll for more)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QListWidget

    for lst in body.findChildren(QListWidget):
        lst.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lst.setWordWrap(True)
        lst.setTextElideMode(Qt.TextElideMode.ElideNone)
        lst.setResizeMode(lst.ResizeMode.Adjust)
        row = lst.fontMetrics().height() + 4
        lst.setMaximumHeight(LIST_ROWS * row + 2 * lst.frameWidth() + 4)
        lst.setMinimumHeight(3 * row)


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
