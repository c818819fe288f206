"""Annotate CPL in a real viewer: a scripted session with a simulated observer."""

import time

import numpy as np
import pytest
from skimage import data as skdata

from napari_resjnd.core.events import AnnotationDone, TrialShown
from napari_resjnd.core.research.annotation import AnnotationSession
from napari_resjnd.widgets.annotate import STIM_CANDIDATE, AnnotateWidget
from napari_resjnd.widgets.finetune import FinetuneWidget

pytestmark = pytest.mark.gui

BOXES = [[[10, 10], [10, 58], [50, 58], [50, 10]], [[70, 80], [70, 140], [120, 140], [120, 80]]]


@pytest.fixture
def setup(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer(show=True)
    w = AnnotateWidget(viewer)
    viewer.window.add_dock_widget(w)
    img = skdata.astronaut()[::3, ::3]
    viewer.add_image(img, name="astro", rgb=True)
    viewer.add_shapes(BOXES, shape_type="rectangle", name="rects")
    w.pristine.value, w.shapes.value = viewer.layers["astro"], viewer.layers["rects"]
    w.levels.value = 6
    w.session_file.value = str(tmp_path / "session.json")
    return viewer, w, img


def run_observer(qtbot, w, thresholds, wait_first_ms=0, stop_after=None):
    """Answer like an observer who sees a difference above ``thresholds[patch]``;
    returns (answers, flips and jitter of the first trial's flicker)."""
    answers, flicker = 0, None
    while w.busy:
        i, level = w.current
        if answers == 0 and wait_first_ms:
            qtbot.wait(wait_first_ms)
            flicker = (len(w.toggle_times), w.flicker_jitter_ms())
        w.answer(level <= thresholds[i])
        answers += 1
        if stop_after and answers == stop_after:
            break
    return answers, flicker


@pytest.mark.slow
def test_scripted_session_produces_the_target_layer(qtbot, setup, tmp_path):
    viewer, w, img = setup
    w.rate.value = 4.0
    w.export_dir.value = str(tmp_path / "pairs")
    events = []
    w.progressed.connect(events.append)
    w.start()
    assert w.busy and STIM_CANDIDATE in viewer.layers
    t0 = time.perf_counter()
    n, (flips, jitter) = run_observer(qtbot, w, thresholds=[2, 4], wait_first_ms=1600)
    print(
        f"{n} judgements; flicker: {flips} flips in 1.6 s at 4 Hz, half-period jitter {jitter:.1f} ms; "
        f"the session took {(time.perf_counter() - t0) * 1000:.0f} ms in all"
    )
    assert 10 <= flips <= 14 and jitter < 30
    assert w.status.value.startswith("done"), w.status.value
    target = viewer.layers["astro CPL target"]
    assert target.metadata["resjnd"]["critical_levels"] == [2, 4]
    trials, end = events[:-1], events[-1]
    assert len(trials) == n and all(isinstance(e, TrialShown) and e.patches == 2 for e in trials)
    assert [e.done for e in trials] == sorted(e.done for e in trials) and trials[-1].done == 1
    assert isinstance(end, AnnotationDone) and end.critical == (2, 4) and end.target == "astro CPL target"
    s = AnnotationSession.load(tmp_path / "session.json")
    assert [p.critical for p in s.patches] == [2, 4]
    t = s.patches[0].trials[0]
    assert t["mode"] == "flicker" and t["first"] in ("original", "candidate") and t["response_time_s"] > 1
    lad = w.ladders[1]
    (y0, y1, x0, x1) = s.patches[1].box
    np.testing.assert_allclose(target.data[y0:y1, x0:x1] * 255, lad.levels[4], atol=1e-3)
    outside = target.data[100:, :50] * 255
    np.testing.assert_allclose(outside, img[100:, :50], atol=1e-3)
    assert (tmp_path / "pairs" / "label" / "astro_001.png").exists()
    assert STIM_CANDIDATE not in viewer.layers
    # the Fine-tune widget takes the target layer directly
    ft = FinetuneWidget(viewer)
    assert "astro CPL target" in [layer.name for layer in ft.pristine.choices]


def test_side_by_side_and_resume_after_a_crash(qtbot, setup, tmp_path):
    viewer, w, _img = setup
    w.mode.value = "side by side"
    w.start()
    run_observer(qtbot, w, thresholds=[1, 3], stop_after=2)
    assert w.busy
    # crash: a fresh widget on the same session file continues where it stopped
    w2 = AnnotateWidget(viewer)
    w2.pristine.value, w2.shapes.value = viewer.layers["astro"], viewer.layers["rects"]
    w2.levels.value = 6
    w2.mode.value = "side by side"
    w2.session_file.value = str(tmp_path / "session.json")
    w2.start()
    before = sum(len(p.trials) for p in w2.session.patches)
    assert before == 2
    run_observer(qtbot, w2, thresholds=[1, 3])
    s = AnnotationSession.load(tmp_path / "session.json")
    assert [p.critical for p in s.patches] == [1, 3]
    assert s.patches[0].trials[0]["candidate_side"] in ("left", "right")


@pytest.mark.slow
def test_a_failed_pair_export_is_one_line_and_keeps_the_session_and_target(qtbot, setup, tmp_path):
    """The export folder cannot be made (a file is in the way): the session ends as
    usual, its target layer is there, the status says why the pairs are missing."""
    viewer, w, _ = setup
    (tmp_path / "pairs").write_text("a file, not a folder")
    w.export_dir.value = str(tmp_path / "pairs")
    w.start()
    run_observer(qtbot, w, thresholds=[2, 4])
    assert not w.busy and w.start_button.enabled
    assert w.status.value.startswith("error: pairs not exported"), w.status.value
    assert "astro CPL target" in viewer.layers
    assert (tmp_path / "pairs").read_text() == "a file, not a folder"
