"""The JND-guided coding widget: its worker without a viewer, then the widget under pytest-qt."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from skimage import data as skdata

from napari_resjnd.core.coding import sweep
from napari_resjnd.core.events import Encoded, drive
from napari_resjnd.widgets._coding_worker import CodingJob, code
from napari_resjnd.widgets._models import ModelStore


@pytest.fixture
def photo() -> np.ndarray:
    return skdata.astronaut()[40:120, 180:260].copy()


def test_worker_codes_at_equal_quality_and_equal_rate_and_caches_the_sweep(photo, monkeypatch):
    job = CodingJob(photo, "jpeg", ("yang2005",), quality=50, sweep=(20, 50, 90))
    cache: dict = {}
    events: list = []
    out = drive(code(ModelStore(), job, cache, threading.Event()), events.append)
    assert out.ok, out.error
    result = out.value
    assert sum(isinstance(e, Encoded) for e in events) == 6
    assert [(d.jnd, d.match) for d in result.decoded] == [
        ("none", "same quality"), ("yang2005", "same quality"), ("yang2005", "same bpp"),
    ]  # fmt: skip
    plain, same_q, same_bpp = result.decoded
    assert same_q.quality == 50 and plain.image.shape == photo.shape
    assert abs(np.log(same_bpp.bpp / plain.bpp)) < abs(np.log(same_q.bpp / plain.bpp)) + 1e-9
    assert {r["metric"] for r in result.bd} == {"psnr", "ssimulacra2"}

    # moving the slider: no new maps, no new sweep, only the three codings
    monkeypatch.setattr(sweep, "iter_sweep", lambda *a, **k: pytest.fail("the sweep should come from the cache"))
    events.clear()
    again = drive(
        code(ModelStore(), CodingJob(photo, "jpeg", ("yang2005",), 80, (20, 50, 90)), cache, threading.Event())
    )
    assert again.ok and again.value.decoded[0].quality == 80
    # another image: the first image's pictures and sweep are dropped, one set is kept
    monkeypatch.undo()
    other = drive(
        code(ModelStore(), CodingJob(photo[::-1].copy(), "jpeg", ("yang2005",), 50, (20, 90)), cache, threading.Event())
    )
    assert other.ok and len(cache) == 2 and {k[0] for k in cache} == {"pictures", "sweep"}


def test_worker_codes_without_the_optional_metric_libraries(photo, monkeypatch):
    """A bare install (no ssimulacra2, no bjontegaard): PSNR alone, no BD-rates, and the run
    says what was left out instead of failing."""
    import sys

    monkeypatch.setitem(sys.modules, "ssimulacra2", None)
    monkeypatch.setitem(sys.modules, "bjontegaard", None)
    out = drive(code(ModelStore(), CodingJob(photo, "jpeg", ("yang2005",), 50, (20, 90)), {}, threading.Event()))
    assert out.ok, out.error
    result = out.value
    assert result.metrics == ("psnr",) and result.perceptual == "psnr" and result.bd == []
    assert "ssimulacra2" in (result.notice or "") and all(set(d.metrics) == {"psnr"} for d in result.decoded)


def test_worker_codes_resjnds_cpl_image(photo, tmp_path):
    from conftest import make_tiny

    from napari_resjnd.core.weights import save_weights

    weights = str(save_weights(make_tiny(), tmp_path / "tiny.safetensors"))
    job = CodingJob(photo, "webp", ("resjnd", "resjnd-smooth"), quality=60, sweep=(30, 60, 90), weights=weights)
    out = drive(code(ModelStore(), job, {}, threading.Event()))
    assert out.ok, out.error
    assert [d.jnd for d in out.value.decoded] == ["none", "resjnd", "resjnd", "resjnd-smooth", "resjnd-smooth"]
    plain, cpl = out.value.decoded[0], out.value.decoded[1]
    assert not np.array_equal(plain.image, cpl.image)  # the CPL image, not the original, was coded


def test_worker_reports_errors_and_stops(photo):
    bad = drive(code(ModelStore(), CodingJob(photo, "bpg", ("yang2005",), 50), {}, threading.Event()))
    assert not bad.ok and "unknown codec" in bad.error
    stop = threading.Event()
    stop.set()
    stopped = drive(code(ModelStore(), CodingJob(photo, "jpeg", ("chou1995",), 50, (30, 60)), {}, stop))
    assert stopped.cancelled


@pytest.mark.gui
def test_widget_adds_decoded_layers_table_and_plot(qtbot, make_napari_viewer, photo):
    from napari_resjnd.widgets.coding import CodingWidget

    viewer = make_napari_viewer()
    w = CodingWidget(viewer)
    viewer.window.add_dock_widget(w)
    src = viewer.add_image(photo, name="astro", rgb=True)
    w.image.value = src
    w.codec.value = "jpeg"
    w.models.value = ["chou1995"]
    w.sweep.value = "20, 50, 90"
    w.run()
    qtbot.waitUntil(lambda: not w.busy, timeout=60_000)
    assert w.status.value.startswith("quality 50"), w.status.value
    same_q = viewer.layers["astro jpeg chou1995 (same quality)"]
    assert same_q.rgb and same_q.data.shape == photo.shape and same_q.metadata["resjnd"]["quality"] == 50
    assert "astro jpeg none (same quality)" in viewer.layers and "astro jpeg chou1995 (same bpp)" in viewer.layers
    assert w.table.column_headers == ("JND model", "metric", "BD-rate %")
    assert [row[:2] for row in w.table.data] == [["chou1995", "psnr"], ["chou1995", "ssimulacra2"]]
    assert len(w.plot.getPlotItem().listDataItems()) == 3  # two curves and the slider's points
    before = viewer.layers["astro jpeg none (same quality)"].data.copy()
    w.quality.value = 10  # the slider codes again
    qtbot.waitUntil(lambda: not w.busy and w.status.value.startswith("quality 10"), timeout=60_000)
    assert viewer.layers["astro jpeg none (same quality)"].metadata["resjnd"]["quality"] == 10
    assert not np.array_equal(before, viewer.layers["astro jpeg none (same quality)"].data)
    assert sum(1 for layer in viewer.layers if "astro jpeg" in layer.name) == 3


@pytest.mark.gui
def test_widget_errors_are_reported(qtbot, make_napari_viewer, photo):
    from napari_resjnd.widgets.coding import CodingWidget

    viewer = make_napari_viewer()
    w = CodingWidget(viewer)
    w.run()
    assert "pick an image layer" in w.status.value and not w.busy
    w.image.value = viewer.add_image(photo, name="astro", rgb=True)
    w.models.value = []
    w.run()
    assert "at least one JND model" in w.status.value
    w.models.value = ["chou1995"]
    w.sweep.value = "50"
    w.run()
    assert "at least 2 distinct qualities" in w.status.value and not w.busy


@pytest.mark.gui
def test_widget_runs_the_last_request_made_while_busy(qtbot, make_napari_viewer, photo):
    """A slider move or Code press during a run is not dropped: when the run ends the
    widget codes at what it shows then (the last request), once."""
    from napari_resjnd.widgets.coding import CodingWidget

    viewer = make_napari_viewer()
    w = CodingWidget(viewer)
    w.image.value = viewer.add_image(photo, name="astro", rgb=True)
    w.codec.value, w.models.value, w.sweep.value = "jpeg", ["chou1995"], "20, 50, 90"
    runs: list[int] = []
    start = w.runner.start
    w.runner.start = lambda *a, **k: runs.append(a[2].quality) or start(*a, **k)  # type: ignore[method-assign]
    w.run()
    assert w.busy
    w.quality.value = 40  # moves while the first run (maps, sweep) is busy
    w.quality.value = 30
    w.run()  # and a Code press
    qtbot.waitUntil(lambda: not w.busy and w.status.value.startswith("quality 30"), timeout=60_000)
    qtbot.wait(300)
    assert runs == [50, 30] and not w.busy
    assert viewer.layers["astro jpeg none (same quality)"].metadata["resjnd"]["quality"] == 30
    assert w.result is not None and w.result.decoded[0].quality == 30
