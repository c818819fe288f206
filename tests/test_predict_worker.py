"""The Predict widget's worker body without a viewer: progress, result, errors, cancel."""

import threading

import numpy as np
from conftest import make_tiny

from napari_resjnd.core.weights import save_weights
from napari_resjnd.widgets._models import ModelStore
from napari_resjnd.widgets._predict_worker import Outcome, PredictSettings, compute


def drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as end:
            return events, end.value


def test_compute_reports_tiles_and_returns_the_prediction(tmp_path, rng):
    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    events, out = drive(
        compute(ModelStore(), PredictSettings(weights, device="cpu", tile=16), img, True, threading.Event())
    )
    assert isinstance(out, Outcome) and out.error is None and out.prediction.jnd.shape == (40, 50)
    tiles = [(d, t) for d, t, _ in events if t]
    assert tiles[-1][0] == tiles[-1][1] > 1 and [d for d, _ in tiles] == sorted(d for d, _ in tiles)


def test_compute_turns_problems_into_outcomes(tmp_path, rng):
    img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    _, missing = drive(compute(ModelStore(), PredictSettings("resjnd-cplset"), img, True, threading.Event()))
    assert missing.missing_weights == "resjnd-cplset" and "not cached" in missing.error
    _, bad = drive(compute(ModelStore(), PredictSettings(str(tmp_path / "x.pth")), img, True, threading.Event()))
    assert bad.prediction is None and "no such file" in bad.error
    stop = threading.Event()
    stop.set()
    weights = str(save_weights(make_tiny(), tmp_path / "t.safetensors"))
    _, cancelled = drive(compute(ModelStore(), PredictSettings(weights, device="cpu"), img, True, stop))
    assert cancelled.cancelled and cancelled.prediction is None
    _, classic = drive(compute(ModelStore(), PredictSettings("classic:chou"), img, True, threading.Event()))
    assert classic.prediction.cpl is None and classic.prediction.jnd.shape == (20, 20)
