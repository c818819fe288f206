"""Dataset-scale training: from scratch, torchrun parity (gloo), interrupt and resume."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from napari_resjnd import load_model
from napari_resjnd.cli import main


@pytest.fixture(scope="module")
def synthetic_pairs(tmp_path_factory):
    """8 random-texture images; targets are lightly blurred (a learnable CPL stand-in)."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    for sub in ("data", "label"):
        (root / sub).mkdir()
    for i in range(8):
        a = ndimage.gaussian_filter(rng.uniform(0, 255, (40, 40, 3)), (1.5, 1.5, 0))
        b = ndimage.gaussian_filter(a, (0.8, 0.8, 0))
        Image.fromarray(a.round().astype(np.uint8)).save(root / "data" / f"{i}.png")
        Image.fromarray(b.round().astype(np.uint8)).save(root / "label" / f"{i}.png")
    return root


def args(pairs, out, *extra):
    return ["train", "--pairs", str(pairs), "--out", str(out), "--channels", "8", "--recursions", "2",
            "--preset", "finetune", "--lr", "3e-3", "--batch", "4", "--patch", "24", "--val-fraction", "0.25",
            "--val-every", "1", "--workers", "0", "--device", "cpu", "--precision", "fp32", *extra]


def test_from_scratch_lowers_the_loss(tmp_path, synthetic_pairs, capsys):
    out = tmp_path / "scratch.safetensors"
    assert main(args(synthetic_pairs, out, "--epochs", "4")) == 0
    h = json.loads(out.with_suffix(".json").read_text())
    v = [e["val_loss"] for e in h["epochs"]]
    assert len(v) == 5 and v[-1] < v[0]
    assert h["data"]["train_patches"] == 6 and h["data"]["val_patches"] == 2
    assert load_model(out).architecture == {"name": "ResJND", "channels": 8, "recursions": 2}
    assert "epoch   4" in capsys.readouterr().out


def test_interrupt_and_resume_give_the_same_weights(tmp_path, synthetic_pairs):
    straight = tmp_path / "a.safetensors"
    assert main(args(synthetic_pairs, straight, "--epochs", "4", "--workers", "2")) == 0
    cut = tmp_path / "b.safetensors"
    assert main(args(synthetic_pairs, cut, "--epochs", "2")) == 0
    assert main(args(synthetic_pairs, cut, "--epochs", "4", "--resume", str(cut))) == 0
    a, b = load_model(straight).state_dict(), load_model(cut).state_dict()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-5, atol=1e-7)
    ha = json.loads(straight.with_suffix(".json").read_text())["epochs"]
    hb = json.loads(cut.with_suffix(".json").read_text())["epochs"]
    assert [e["epoch"] for e in hb] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose([e["val_loss"] for e in ha], [e["val_loss"] for e in hb], rtol=1e-5)


def test_torchrun_two_processes_match_one(tmp_path, synthetic_pairs):
    one = tmp_path / "one" / "ck.safetensors"
    two = tmp_path / "two" / "ck.safetensors"
    assert main(args(synthetic_pairs, one, "--epochs", "3")) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "napari_resjnd.cli", *args(synthetic_pairs, two, "--epochs", "3")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[:6000] + "\n".join(
        line for line in r.stderr.splitlines() if "Error" in line or "what()" in line or "error" in line)[-3000:]
    h1 = json.loads(one.with_suffix(".json").read_text())
    h2 = json.loads(two.with_suffix(".json").read_text())
    assert h2["world_size"] == 2 and h1["world_size"] == 1
    for e1, e2 in zip(h1["epochs"], h2["epochs"], strict=True):
        for k in ("train_loss", "val_loss"):
            if e1[k] is not None:
                assert e2[k] == pytest.approx(e1[k], rel=1e-4), (e1, e2)
    assert sorted(p.name for p in two.parent.iterdir()) == ["ck.json", "ck.resume.pt", "ck.safetensors"]
    assert r.stdout.count("epoch   3") == 1  # rank 0 alone reports
