"""The widgets' worker bodies without a viewer: typed events, one Outcome type, errors, cancel."""

import threading

import numpy as np
from conftest import make_tiny

from napari_resjnd.core.events import Status, TileDone
from napari_resjnd.core.events import drive as drive_events
from napari_resjnd.core.weights import save_weights
from napari_resjnd.widgets._models import ModelStore
from napari_resjnd.widgets._predict_worker import PredictSettings, compute
from napari_resjnd.widgets._work import Outcome


def drive(gen):
    events = []
    return events, drive_events(gen, events.append)


def test_compute_reports_tiles_and_returns_the_prediction(tmp_path, rng):
    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    events, out = drive(
        compute(ModelStore(), PredictSettings(weights, device="cpu", tile=16), img, True, threading.Event())
    )
    assert isinstance(out, Outcome) and out.error is None and out.value.jnd.shape == (40, 50)
    assert [e.message for e in events if isinstance(e, Status)] == ["loading weights…", "running…"]
    tiles = [(e.done, e.total) for e in events if isinstance(e, TileDone)]
    assert tiles[-1][0] == tiles[-1][1] > 1 and [d for d, _ in tiles] == list(range(1, tiles[-1][1] + 1))


def test_compute_turns_problems_into_outcomes(tmp_path, rng):
    img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    _, missing = drive(compute(ModelStore(), PredictSettings("resjnd-cplset"), img, True, threading.Event()))
    assert missing.missing_weights == "resjnd-cplset" and "not cached" in missing.error
    _, bad = drive(compute(ModelStore(), PredictSettings(str(tmp_path / "x.pth")), img, True, threading.Event()))
    assert bad.value is None and "no such file" in bad.error
    stop = threading.Event()
    stop.set()
    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    _, cancelled = drive(compute(ModelStore(), PredictSettings(weights, device="cpu"), img, True, stop))
    assert cancelled.cancelled and cancelled.value is None
    _, classic = drive(compute(ModelStore(), PredictSettings("classic:chou"), img, True, threading.Event()))
    assert classic.value.cpl is None and classic.value.jnd.shape == (20, 20)


def test_train_worker_runs_without_a_viewer_and_reports_typed_events(tmp_path, rng):
    from napari_resjnd.core.events import EpochDone, TrainingStarted, TrainingStep
    from napari_resjnd.core.training.config import FinetuneConfig
    from napari_resjnd.widgets._finetune_worker import FinetuneJob, train

    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    pristine = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    target = np.clip(pristine.astype(int) + rng.integers(-4, 5, pristine.shape), 0, 255).astype(np.uint8)
    cfg = FinetuneConfig(epochs=2, patch=16, batch=4, device="cpu", val_fraction=0.25)
    job = FinetuneJob(weights, tmp_path / "ft.safetensors", cfg, pristine, target, "pair")
    events, out = drive(train(job, threading.Event()))
    kinds = [type(e) for e in events]
    assert kinds[0] is Status and TrainingStarted in kinds and kinds[-1] is EpochDone
    assert sum(k is TrainingStep for k in kinds) == 2 * next(e.steps for e in events if isinstance(e, TrainingStarted))
    assert out.error is None and out.value.stopped == "finished" and out.value.checkpoint.exists()
    # a stop before the first step keeps epoch 0's weights and says "stopped"
    stop = threading.Event()
    stop.set()
    _, stopped = drive(train(FinetuneJob(weights, tmp_path / "s.safetensors", cfg, pristine, target), stop))
    assert stopped.value.stopped == "stopped"
    # bad input becomes a one-line error, not an exception
    _, bad = drive(train(FinetuneJob(weights, tmp_path / "b.safetensors", cfg, pristine, target[:32]), stop))
    assert bad.value is None and bad.error and "\n" not in bad.error


def test_evaluate_worker_runs_without_a_viewer(rng):
    from napari_resjnd.widgets._evaluate_worker import EvaluateJob, Evaluation, evaluate

    img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    events, out = drive(evaluate(EvaluateJob(img, ("chou", "uniform"), {}, (26.0, 30.0)), threading.Event()))
    assert all(isinstance(e, Status) for e in events) and len(events) == 2
    assert isinstance(out.value, Evaluation) and out.value.order == ["chou", "uniform"]
    got = {(r.jnd, r.target_psnr): r.metrics["psnr"] for r in out.value.results}
    assert set(got) == {(m, t) for m in ("chou", "uniform") for t in (26.0, 30.0)}
    assert all(abs(psnr - t) < 0.05 for (_, t), psnr in got.items())
    _, bad = drive(evaluate(EvaluateJob(img, ("nosuchmodel",), {}, (26.0,)), threading.Event()))
    assert bad.value is None and "nosuchmodel" in bad.error


def test_a_big_image_gets_a_first_look_at_the_view_before_its_tiles(tmp_path, rng, monkeypatch):
    """One small box around the view comes first (its values those of the run, up to
    float rounding); then the run's own tiles, nearest the view first."""
    from napari_resjnd.widgets import _predict_worker
    from napari_resjnd.widgets._predict_worker import TilePreview

    monkeypatch.setattr(_predict_worker, "PEEK_ABOVE", 0)
    monkeypatch.setattr(_predict_worker, "PEEK", 24)
    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    settings = PredictSettings(weights, device="cpu", precision="fp32", tile=32, first=(10.0, 100.0))
    events, out = drive(compute(ModelStore(), settings, img, True, threading.Event()))
    previews = [e for e in events if isinstance(e, TilePreview)]
    assert isinstance(events[events.index(previews[0]) - 1], Status)  # before any tile
    assert previews[0].box == (0, 24, 88, 112) and len(previews) == 1 + 12
    a, b, c, d = previews[0].box
    np.testing.assert_allclose(previews[0].jnd, out.value.jnd[a:b, c:d], atol=1e-3)
    y0, y1, x0, x1 = previews[1].box
    assert y0 <= 10 < y1 and x0 <= 100 < x1
