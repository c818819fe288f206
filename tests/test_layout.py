"""The GUI keeps its layout: every docked ResJND widget fits a laptop screen
(no sideways scrolling, every control whole, tables with real columns), and
long messages never grow the main window or squeeze the canvas (a real viewer,
docked as napari's Plugins menu docks them)."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from napari_resjnd.core.zoo import MODELS as CLASSIC_MODELS
from napari_resjnd.widgets._common import MAX_WIDTH, short_text

pytestmark = [pytest.mark.gui, pytest.mark.slow]

PLUGIN = "napari-resjnd"
MANIFEST = Path(__file__).resolve().parents[1] / "src" / "napari_resjnd" / "napari.yaml"
#: Every widget, as the manifest names it for napari's menu.
WIDGETS = [w["display_name"] for w in yaml.safe_load(MANIFEST.read_text())["contributions"]["widgets"]]


def settle(qtbot):
    qtbot.wait(100)


def open_window(make_napari_viewer, qtbot, size=(1280, 800)):
    viewer = make_napari_viewer(show=True)
    win = viewer.window._qt_window
    win.resize(*size)
    settle(qtbot)
    assert (win.width(), win.height()) == size
    return viewer, win


def canvas_width(viewer) -> int:
    return viewer.window._qt_viewer.canvas.native.width()


def dock_all(viewer, qtbot) -> dict:
    out = {}
    for name in WIDGETS:
        dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        out[name] = (dock, widget)
        settle(qtbot)
    return out


def test_docked_widgets_keep_the_window_and_half_the_canvas(make_napari_viewer, qtbot):
    viewer, win = open_window(make_napari_viewer, qtbot)
    docks = dock_all(viewer, qtbot)
    assert (win.width(), win.height()) == (1280, 800)
    assert canvas_width(viewer) >= 0.5 * win.width(), canvas_width(viewer)
    # one dock's room: the ResJND docks are tabs of one another
    first = docks[WIDGETS[0]][0]
    tabbed = set(win.tabifiedDockWidgets(first))
    assert {d for d, _ in list(docks.values())[1:]} <= tabbed
    for dock, widget in docks.values():
        assert dock.width() <= MAX_WIDTH + 8
        assert widget.native.verticalScrollBarPolicy() is not None  # tall widgets scroll inside the dock


def test_long_error_does_not_widen_the_dock(make_napari_viewer, qtbot):
    viewer, win = open_window(make_napari_viewer, qtbot)
    docks = dock_all(viewer, qtbot)
    viewer.open_sample(PLUGIN, "astronaut")
    settle(qtbot)
    before = canvas_width(viewer)
    predict = docks[WIDGETS[0]][1]
    message = "x" * 2000
    predict.report_error(message)
    settle(qtbot)
    assert win.width() == 1280 and win.height() == 800
    assert canvas_width(viewer) == before and before >= 0.45 * win.width()
    shown = predict.status.native.text()
    assert len(shown) <= 180 and "…" in shown
    assert predict.status.value == f"error: {message}" and predict.status.tooltip == f"error: {message}"
    # a long path and URL as one word each: shortened in the middle, whole in the tooltip
    url = "https://github.com/Knife646/ResJND/raw/06a857d11925452eb6540964f5951ad74d3e6bca/checkpoint/x.pth"
    predict.status.value = f"could not download {url}"
    settle(qtbot)
    assert canvas_width(viewer) == before
    assert "…" in predict.status.native.text() and predict.status.native.text().endswith("/x.pth")
    assert url in predict.status.tooltip


@pytest.mark.parametrize(
    "message, shown",
    [
        ("ready", "ready"),
        ("a " + "b" * 50 + " c", "a " + "b" * 19 + "…" + "b" * 19 + " c"),
        ("word " * 100, ("word " * 100)[:179].rstrip() + "…"),
    ],
)
def test_short_text(message, shown):
    assert short_text(message) == shown


def test_evaluate_selects_the_newest_jnd_layer_classics_and_controls(make_napari_viewer, qtbot):
    from conftest import make_tiny

    from napari_resjnd import predict
    from napari_resjnd.widgets import _layers
    from napari_resjnd.widgets.evaluate import EvaluateWidget

    viewer = make_napari_viewer()
    w = EvaluateWidget(viewer)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
    cat = viewer.add_image(rng.integers(0, 256, (64, 72, 3), dtype=np.uint8), name="cat", rgb=True)
    src = viewer.add_image(img, name="photo", rgb=True)
    pred = predict(make_tiny(), img, device="cpu")
    _layers.add_or_update(viewer, cat, predict(make_tiny(), cat.data, device="cpu"), ["JND"], True)
    _layers.add_or_update(viewer, src, pred, ["JND"], True)
    newer = viewer.add_image(
        pred.jnd * 2, name="photo JND (fine-tuned)", metadata={"resjnd": {"output": "jnd", "source_layer": "photo"}}
    )
    w.image.value = src
    classics_and_controls = [*CLASSIC_MODELS, "uniform", "shuffled"]
    assert set(w.maps.value) == {"layer:" + newer.name, *classics_and_controls}
    w.image.value = cat
    assert set(w.maps.value) == {"layer:cat JND", *classics_and_controls}
    # a pick of the user's own stays while layers come and go
    w.maps.value = ["chou1995"]
    viewer.add_image(np.zeros((8, 8)), name="other")
    assert list(w.maps.value) == ["chou1995"]
    # one click on the defaults evaluates every map
    w.image.value = src
    w.psnr.value = "30"
    w.run()
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert w.status.value.startswith("done"), w.status.value
    # on pure noise KLT-JND keeps every component: its map is ~0 and its noise cannot reach
    # 30 dB, so it is left out and named; every other map is evaluated
    assert {r.jnd for r in w.results} == {newer.name, *classics_and_controls} - {"jiang2022"}
    assert "left out (noise cannot reach the target): jiang2022" in w.status.value


#: A cell that shows a Python list or tuple rather than a value.
LISTY = re.compile(r"^\s*[\[\(\{].*,")


def layout_problems(widget) -> list[str]:
    """What a user of this dock could not see or reach without scrolling sideways."""
    from qtpy.QtWidgets import QWidget

    area = widget.native
    body, width = area.widget(), area.viewport().width()
    found = []
    if area.horizontalScrollBar().maximum() > 0:
        found.append(f"scrolls sideways by {area.horizontalScrollBar().maximum()} px")
    for w in body.findChildren(QWidget):
        if w.isVisible():
            found += control_problems(w, body, width)
    return found


def control_problems(w, body, width: int) -> list[str]:
    """One control: inside the dock's width, not squeezed, its text whole (wrapped where long)."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import (
        QAbstractButton,
        QAbstractScrollArea,
        QAbstractSpinBox,
        QComboBox,
        QGraphicsView,
        QLabel,
        QLineEdit,
        QProgressBar,
        QSlider,
        QTableWidget,
    )

    inputs = (QLineEdit, QComboBox, QAbstractSpinBox, QSlider, QProgressBar)
    if not isinstance(w, (QAbstractButton, QLabel, QAbstractScrollArea, *inputs)):
        return []
    found = []
    what = f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
    left = w.mapTo(body, QPoint(0, 0)).x()
    if left < 0 or left + w.width() > width + 1:
        found.append(f"{what} runs from x={left} to {left + w.width()}, past the dock's {width} px")
    if isinstance(w, (QLineEdit, QComboBox)) and w.width() + 1 < min(w.minimumSizeHint().width(), w.sizeHint().width()):
        found.append(f"{what} squeezed to {w.width()} px (needs {w.minimumSizeHint().width()})")
    if isinstance(w, QAbstractSpinBox) and w.width() < w.fontMetrics().horizontalAdvance(w.text()) + 8:
        found.append(f"{what} squeezed to {w.width()} px")
    if isinstance(w, QAbstractButton) and w.text() and w.width() + 1 < w.sizeHint().width():
        found.append(f"{what} clipped: {w.width()} px of {w.sizeHint().width()}")
    if isinstance(w, QLabel) and w.text():
        if w.wordWrap() and w.height() + 1 < w.heightForWidth(w.width()):
            found.append(f"{what} cut: {w.height()} px high, its text needs {w.heightForWidth(w.width())}")
        if not w.wordWrap() and w.width() + 1 < w.sizeHint().width():
            found.append(f"{what} cut: {w.width()} px of {w.sizeHint().width()}")
    scrolls = isinstance(w, QAbstractScrollArea) and not isinstance(w, QGraphicsView)
    if scrolls and w.horizontalScrollBar().isVisible():
        found.append(f"{type(w).__name__} scrolls sideways")
    if isinstance(w, QTableWidget):
        found += table_problems(w)
    return found


def table_problems(table) -> list[str]:
    """A results table has headed columns holding values, all of them in view."""
    found = []
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    if len(headers) < 2 or any(not h or h.isdigit() or h == "data" for h in headers):
        found.append(f"table headers {headers}")
    if table.horizontalHeader().length() > table.viewport().width() + 1:
        found.append(f"table {headers} is {table.horizontalHeader().length()} px in {table.viewport().width()}")
    for r in range(table.rowCount()):
        for c in range(table.columnCount()):
            item = table.item(r, c)
            text = item.text() if item is not None else ""
            shown = table.itemDelegate().displayText(text, table.locale())
            if LISTY.match(shown):
                found.append(f"table {headers} row {r} column {c} holds a list: {shown[:60]}")
            if shown != text:
                found.append(f"table {headers} row {r} column {c} shows {shown!r} for {text!r}")
    return found


def fill_results(viewer, docks, qtbot) -> None:
    """Run the two widgets with tables on a small photo, so their tables, plots and
    long status lines are drawn."""
    from skimage import data as skdata

    small = viewer.add_image(skdata.astronaut()[40:120, 180:260].copy(), name="small", rgb=True)
    coding = docks["JND-guided coding"][1]
    coding.image.value, coding.models.value, coding.sweep.value = small, ["chou1995"], "20, 50, 90"
    coding.run()
    evaluate = docks["Evaluate JND maps"][1]
    evaluate.image.value, evaluate.maps.value, evaluate.psnr.value = small, ["chou1995", "uniform"], "26, 30"
    evaluate.add_noisy.value = False
    qtbot.waitUntil(lambda: not coding.busy, timeout=120_000)
    evaluate.run()
    qtbot.waitUntil(lambda: not evaluate.busy, timeout=120_000)
    assert coding.status.value.startswith("quality 50"), coding.status.value
    assert evaluate.status.value.startswith("done"), evaluate.status.value
    predict = docks[WIDGETS[0]][1]
    predict.weights_help.show()  # the ways out of a failed download, shown then only
    predict.status.value = "error: could not download resjnd-cplset: " + "the network is unreachable " * 4


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)], ids=["1280x800", "1920x1080"])
def test_every_dock_fits_the_screen(make_napari_viewer, qtbot, size):
    from superqt import QCollapsible

    viewer, win = open_window(make_napari_viewer, qtbot, size)
    docks = dock_all(viewer, qtbot)
    assert len(docks) == 7
    fill_results(viewer, docks, qtbot)
    for fold in win.findChildren(QCollapsible):
        fold.expand(animate=False)  # Advanced, and the tables and plots, open
    problems = {}
    for name, (dock, widget) in docks.items():
        dock.raise_()
        settle(qtbot)
        assert widget.native.isVisible(), name
        problems[name] = layout_problems(widget)
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
    coding = docks["JND-guided coding"][1]
    assert coding.table.column_headers == ("JND model", "metric", "BD-rate %")
    assert [row[:2] for row in coding.table.data] == [["chou1995", "psnr"], ["chou1995", "ssimulacra2"]]
    assert all(re.fullmatch(r"[+-]\d+\.\d\d|n/a", row[2]) for row in coding.table.data), coding.table.data
    evaluate = docks["Evaluate JND maps"][1]
    assert evaluate.table.column_headers == ("map", "26 dB", "30 dB")
    assert [row[0] for row in evaluate.table.data] == ["chou1995", "uniform"]
