"""The GUI keeps its layout: every docked ResJND widget and long messages never
grow the main window or squeeze the canvas (a real viewer, docked as napari's
Plugins menu docks them)."""

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


def open_window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    win = viewer.window._qt_window
    win.resize(1280, 800)
    settle(qtbot)
    assert (win.width(), win.height()) == (1280, 800)
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
