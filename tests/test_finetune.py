"""Fine-tuning: loss falls, stop within a step, resume, checkpoints, bad data, CLI."""

import io
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_tiny
from PIL import Image
from skimage import data as skdata

from napari_resjnd import load_model, predict
from napari_resjnd.cli import main
from napari_resjnd.core.events import EpochDone, TrainingStarted, TrainingStep, drive
from napari_resjnd.core.training.finetune import (
    FinetuneConfig,
    finetune,
    history_path,
    iter_finetune,
    resume_path,
)
from napari_resjnd.core.training.pairs import load_pair_folder, make_pair, patch_origins


def jpeg(img: np.ndarray, quality: int = 20) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


@pytest.fixture(scope="module")
def jpeg_pairs():
    """scikit-image photos paired with JPEG-compressed versions as targets."""
    imgs = [skdata.astronaut()[::4, ::4], skdata.coffee()[::4, ::4], skdata.chelsea()[::3, ::3]]
    return [make_pair(i, jpeg(i), n) for i, n in zip(imgs, ["astronaut", "coffee", "chelsea"])]


FAST = FinetuneConfig(epochs=3, patch=24, batch=8, lr=1e-3, val_fraction=0.25, device="cpu", patience=0)


def test_validation_loss_falls_and_files_are_written(tmp_path, jpeg_pairs):
    out = tmp_path / "ft.safetensors"
    events = []
    res = finetune(make_tiny(), jpeg_pairs, out, FAST, on_event=events.append)
    h = json.loads(history_path(out).read_text())
    assert [e["epoch"] for e in h["epochs"]] == [0, 1, 2, 3]
    assert h["epochs"][0]["train_loss"] is None and h["epochs"][0]["val_loss"] > 0
    assert h["epochs"][-1]["val_loss"] < h["epochs"][0]["val_loss"]
    assert res.stopped == "finished" and resume_path(out).exists()
    assert isinstance(events[0], TrainingStarted) and events[0].val_patches > 0
    steps = [e for e in events if isinstance(e, TrainingStep)]
    assert steps and all(np.isfinite(e.loss) for e in steps)
    epochs = [e for e in events if isinstance(e, EpochDone)]
    assert [e.epoch for e in epochs] == [0, 1, 2, 3] and epochs[0].best
    assert [e.val_loss for e in epochs] == [e["val_loss"] for e in h["epochs"]]
    m = load_model(out)
    assert m.provenance.base_sha256 == "0" * 64
    assert m.provenance.training["hyperparameters"]["optimizer"] == "adam"
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_authors_weights_improve_towards_jpeg_targets(tmp_path, jpeg_pairs, official_cache):
    """The finetune preset (Adam 1e-4) lowers the validation loss from the first epoch."""
    cfg = FinetuneConfig(epochs=1, patch=48, batch=4, device="cpu", val_fraction=0.3, precision="fp32")
    res = finetune(load_model("resjnd-cplset"), jpeg_pairs[:2], tmp_path / "ft.safetensors", cfg)
    v = [e["val_loss"] for e in res.history["epochs"]]
    print("authors' weights, val loss per epoch:", v)
    assert v[1] < v[0]


def test_bf16_autocast_training_runs_and_records_its_precision(tmp_path, jpeg_pairs):
    cfg = replace(FAST, epochs=1, precision="bf16")
    res = finetune(make_tiny(), jpeg_pairs[:1], tmp_path / "bf.safetensors", cfg)
    assert res.history["precision"] == "bf16" and res.stopped == "finished"
    assert all(np.isfinite(e["val_loss"]) for e in res.history["epochs"])


def test_stop_takes_effect_within_one_step(tmp_path, jpeg_pairs):
    steps = []
    gen = iter_finetune(make_tiny(), jpeg_pairs, tmp_path / "ft.safetensors", FAST, should_stop=lambda: len(steps) >= 2)
    res = drive(gen, lambda ev: steps.append(ev) if isinstance(ev, TrainingStep) else None)
    assert len(steps) == 2 and res.stopped == "stopped"
    assert (tmp_path / "ft.safetensors").exists()  # the best so far (epoch 0) is kept


def test_resume_continues_where_the_run_left_off(tmp_path, jpeg_pairs):

    straight = finetune(make_tiny(), jpeg_pairs, tmp_path / "a.safetensors", replace(FAST, epochs=4))
    first = finetune(make_tiny(), jpeg_pairs, tmp_path / "b.safetensors", replace(FAST, epochs=2))
    assert [e["epoch"] for e in first.history["epochs"]] == [0, 1, 2]
    events = []
    second = finetune(
        make_tiny(seed=99),
        jpeg_pairs,
        tmp_path / "b.safetensors",
        replace(FAST, epochs=4),
        resume=tmp_path / "b.safetensors",
        on_event=events.append,
    )
    assert events[0].start_epoch == 3
    assert [e["epoch"] for e in second.history["epochs"]] == [0, 1, 2, 3, 4]
    a = [e["val_loss"] for e in straight.history["epochs"]]
    b = [e["val_loss"] for e in second.history["epochs"]]
    np.testing.assert_allclose(b, a, rtol=1e-4)


def test_checkpoint_round_trips_predictions(tmp_path, jpeg_pairs, rng):

    out = tmp_path / "ft.safetensors"
    res = finetune(make_tiny(), jpeg_pairs, out, replace(FAST, epochs=1, val_fraction=0.0))
    img = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    a = predict(res.model, img, device="cpu").jnd
    b = predict(load_model(out), img, device="cpu").jnd
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_diverging_run_keeps_last_good_weights(tmp_path, jpeg_pairs):

    cfg = replace(FAST, preset="authors", lr=1e30, epochs=2)
    res = finetune(make_tiny(), jpeg_pairs, tmp_path / "ft.safetensors", cfg)
    assert res.stopped == "diverged"
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_frozen_layers_do_not_move(tmp_path, jpeg_pairs):

    net = make_tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    finetune(net, jpeg_pairs, tmp_path / "ft.safetensors", replace(FAST, epochs=1, freeze=("input", "conv1")))
    after = net.state_dict()
    assert torch.equal(before["input.weight"], after["input.weight"])
    assert torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert not torch.equal(before["conv2.weight"], after["conv2.weight"])


def test_bad_pairs_are_refused(tmp_path):
    a = np.zeros((40, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="must match its pristine"):
        make_pair(a, np.zeros((40, 49, 3), np.uint8), "x")
    with pytest.raises(ValueError, match="larger than the image"):
        patch_origins(make_pair(a, a), 64)
    with pytest.raises(ValueError, match="outside the image"):
        patch_origins(make_pair(a, a), 16, boxes=[(100, 120, 0, 10)])
    root = tmp_path / "pairs"
    (root / "data").mkdir(parents=True)
    (root / "label").mkdir()
    Image.fromarray(a).save(root / "data" / "one.png")
    Image.fromarray(a).save(root / "data" / "two.png")
    Image.fromarray(a).save(root / "label" / "one.png")
    with pytest.raises(ValueError, match=r"two.png \(not in label/\)"):
        load_pair_folder(root)
    with pytest.raises(ValueError, match="missing data/"):
        load_pair_folder(tmp_path / "nowhere")


def test_patches_from_boxes_and_masks():
    img = np.zeros((60, 80, 3), np.uint8)
    pair = make_pair(img, img)
    assert patch_origins(pair, 20, boxes=[(0, 40, 0, 40)]) == [(0, 0), (0, 20), (20, 0), (20, 20)]
    assert patch_origins(pair, 20, boxes=[(50, 55, 75, 78)]) == [(40, 60)]  # small box: moved inside
    mask = np.zeros((60, 80), bool)
    mask[30:50, 40:60] = True
    got = patch_origins(pair, 20, mask=mask)
    assert got and all(mask[y + 10, x + 10] for y, x in got)
    assert len(patch_origins(pair, 20)) == 12


def test_cli_finetune_end_to_end(tmp_path, jpeg_pairs, capsys):
    from napari_resjnd.core.weights import save_weights

    root = tmp_path / "pairs"
    for sub in ("data", "label"):
        (root / sub).mkdir(parents=True)
    for p in jpeg_pairs:
        Image.fromarray((p.pristine * 255).round().astype(np.uint8)).save(root / "data" / f"{p.name}.png")
        Image.fromarray((p.target * 255).round().astype(np.uint8)).save(root / "label" / f"{p.name}.png")
    w = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    out = tmp_path / "ft.safetensors"
    rc = main(
        [
            "finetune",
            "--pairs",
            str(root),
            "--out",
            str(out),
            "--weights",
            str(w),
            "--epochs",
            "2",
            "--patch",
            "24",
            "--lr",
            "1e-3",
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "epoch   0" in text and "epoch   2" in text and "best weights in" in text
    assert load_model(out).architecture["channels"] == 8
    rc = main(["finetune", "--pairs", str(tmp_path / "nope"), "--out", str(out), "--weights", str(w)])
    assert rc == 2 and "--pairs" in (err := capsys.readouterr().err) and "no such folder" in err
    (tmp_path / "flat").mkdir()
    rc = main(["finetune", "--pairs", str(tmp_path / "flat"), "--out", str(out), "--weights", str(w)])
    assert rc == 2 and "missing data/" in capsys.readouterr().err


def test_patches_command_crops_aligned_pairs(tmp_path, capsys):
    src = tmp_path / "src"
    for sub in ("data", "label"):
        (src / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    a[:25, :35] = 128  # a flat corner
    Image.fromarray(a).save(src / "data" / "img.png")
    Image.fromarray(255 - a).save(src / "label" / "img.png")
    out = tmp_path / "patches"
    assert main(["patches", str(src), str(out), "--size", "24", "--min-std", "1", "-q"]) == 0
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == sorted(p.name for p in (out / "label").iterdir())
    assert "img_y0_x0.png" not in names and "img_y26_x46.png" in names  # flat skipped; last row/col kept
    d = np.asarray(Image.open(out / "data" / "img_y26_x46.png"))
    assert np.array_equal(d, a[26:50, 46:70])
    assert np.array_equal(np.asarray(Image.open(out / "label" / "img_y26_x46.png")), 255 - a[26:50, 46:70])
    assert "flat patches skipped" in capsys.readouterr().out
    first = sorted(out.rglob("*.png"))
    assert main(["patches", str(src), str(out), "--size", "24", "--min-std", "1", "-q"]) == 0  # deterministic
    assert sorted(out.rglob("*.png")) == first
    Image.fromarray(a[:40]).save(src / "label" / "img.png")
    assert main(["patches", str(src), str(tmp_path / "p2"), "--size", "24", "-q"]) == 2
    assert "must match" in capsys.readouterr().err
