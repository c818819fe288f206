"""The Fine-tune widget in a real viewer: annotations, worker, live plot, Stop, hand-over to Predict."""

import io

import numpy as np
import pytest
from conftest import make_tiny
from PIL import Image
from skimage import data as skdata

from napari_resjnd.core.weights import save_weights
from napari_resjnd.widgets._models import ModelStore
from napari_resjnd.widgets._regions import annotation
from napari_resjnd.widgets.finetune import FinetuneWidget
from napari_resjnd.widgets.predict import PredictWidget

pytestmark = pytest.mark.gui


def jpeg(img, quality=20):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


@pytest.fixture
def setup(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    store = ModelStore()
    store.add_file(save_weights(make_tiny(), tmp_path / "tiny.safetensors"))
    predict_w = PredictWidget(viewer, store=store)
    ft = FinetuneWidget(viewer, store=store)
    viewer.window.add_dock_widget(predict_w)
    viewer.window.add_dock_widget(ft)
    img = skdata.astronaut()[::4, ::4]
    viewer.add_image(img, name="pristine", rgb=True)
    viewer.add_image(jpeg(img), name="target", rgb=True)
    ft.pristine.value = viewer.layers["pristine"]
    ft.target.value = viewer.layers["target"]
    ft.weights.value = str(tmp_path / "tiny.safetensors")
    ft.patch.value, ft.batch.value, ft.lr.value = 24, 4, 1e-3
    yield viewer, ft, predict_w
    ft.stop()


def test_rectangles_become_boxes_in_pixels(setup):
    viewer, _ft, _ = setup
    viewer.layers["pristine"].scale = (2, 2)
    shapes = viewer.add_shapes([[[10, 20], [10, 60], [50, 60], [50, 20]]], shape_type="rectangle", name="r")
    boxes, mask = annotation(shapes, viewer.layers["pristine"])
    assert boxes == [(5, 25, 10, 30)] and mask is None
    labels = viewer.add_labels(np.zeros((128, 128), np.int32), name="m")
    assert annotation(labels, viewer.layers["pristine"])[1].shape == (128, 128)


def test_training_runs_in_worker_updates_plot_and_offers_weights(qtbot, setup, tmp_path):
    viewer, ft, predict_w = setup
    viewer.add_shapes([[[0, 0], [0, 96], [96, 96], [96, 0]]], shape_type="rectangle", name="rects")
    ft.annotation.value = viewer.layers["rects"]
    ft.epochs.value = 2
    ft.out_name.value = "mine"
    ft.start()
    assert ft.busy
    qtbot.waitUntil(lambda: not ft.busy, timeout=120_000)
    assert ft.status.value.startswith("finished"), ft.status.value
    assert len(ft.plot.train_y) >= 2 and ft.plot.val_x == [0, 1, 2]
    xs, _ys = ft.plot.val.getData()
    assert list(xs) == [0, 1, 2]
    out = str(tmp_path / "models" / "mine.safetensors")
    assert predict_w.model.value == out  # handed over, ready to Run
    predict_w.image.value = viewer.layers["pristine"]
    predict_w.run()
    qtbot.waitUntil(lambda: not predict_w.busy, timeout=60_000)
    assert viewer.layers["pristine JND"].metadata["resjnd"]["weights"] == "mine.safetensors"


def test_stop_ends_the_run(qtbot, setup):
    _viewer, ft, _ = setup
    ft.epochs.value = 50
    ft.start()
    qtbot.waitUntil(lambda: ft.progress.value >= 1, timeout=60_000)
    ft.stop_button.clicked.emit()
    qtbot.waitUntil(lambda: not ft.busy, timeout=60_000)
    assert ft.status.value.startswith("stopped"), ft.status.value
    assert ft.progress.value < ft.progress.max


def test_bad_inputs_are_reported(qtbot, setup):
    viewer, ft, _ = setup
    ft.target.value = viewer.layers["pristine"]
    ft.start()
    assert not ft.busy and "another layer" in ft.status.value
    viewer.add_image(np.zeros((20, 20, 3), np.uint8), name="small", rgb=True)
    ft.target.value = viewer.layers["small"]
    ft.start()
    qtbot.waitUntil(lambda: not ft.busy, timeout=30_000)
    assert "must match its pristine" in ft.status.value
