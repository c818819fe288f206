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
    return [
        "train",
        "--pairs",
        str(pairs),
        "--out",
        str(out),
        "--channels",
        "8",
        "--recursions",
        "2",
        "--preset",
        "finetune",
        "--lr",
        "3e-3",
        "--batch",
        "4",
        "--patch",
        "24",
        "--val-fraction",
        "0.25",
        "--val-every",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        *extra,
    ]


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


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, synthetic_pairs):
    one = tmp_path / "one" / "ck.safetensors"
    two = tmp_path / "two" / "ck.safetensors"
    assert main(args(synthetic_pairs, one, "--epochs", "3")) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "napari_resjnd.cli",
            *args(synthetic_pairs, two, "--epochs", "3"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, (
        r.stderr[:6000]
        + "\n".join(line for line in r.stderr.splitlines() if "Error" in line or "what()" in line or "error" in line)[
            -3000:
        ]
    )
    h1 = json.loads(one.with_suffix(".json").read_text())
    h2 = json.loads(two.with_suffix(".json").read_text())
    assert h2["world_size"] == 2 and h1["world_size"] == 1
    for e1, e2 in zip(h1["epochs"], h2["epochs"], strict=True):
        for k in ("train_loss", "val_loss"):
            if e1[k] is not None:
                assert e2[k] == pytest.approx(e1[k], rel=1e-4), (e1, e2)
    assert sorted(p.name for p in two.parent.iterdir()) == ["ck.json", "ck.resume.pt", "ck.safetensors"]
    assert r.stdout.count("epoch   3") == 1  # rank 0 alone reports


def small_args(pairs, out, *extra):
    """``args`` without ``--patch``: the patch size is left to the folder."""
    a = args(pairs, out, *extra)
    i = a.index("--patch")
    return a[:i] + a[i + 2 :]


@pytest.mark.slow
def test_patches_then_train_without_patch_uses_their_size(tmp_path, synthetic_pairs, capsys):
    patches = tmp_path / "p16"
    assert main(["patches", str(synthetic_pairs), str(patches), "--size", "16", "-q"]) == 0
    out = tmp_path / "small.safetensors"
    assert main(small_args(patches, out, "--epochs", "1", "--workers", "2")) == 0
    h = json.loads(out.with_suffix(".json").read_text())
    assert h["config"]["patch"] == 16 and h["data"]["patch"] == 16
    assert "patches of 16 px" in capsys.readouterr().out
    # fine-tuning from the folder follows the same rule
    ft = tmp_path / "ft.safetensors"
    from napari_resjnd.core.weights import save_weights

    start = tmp_path / "start.safetensors"
    save_weights(load_model(out), start)
    assert (
        main(
            [
                "finetune",
                "--pairs",
                str(patches),
                "--out",
                str(ft),
                "--weights",
                str(start),
                "--epochs",
                "1",
                "--batch",
                "8",
                "--device",
                "cpu",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    assert json.loads(ft.with_suffix(".json").read_text())["config"]["patch"] == 16


def test_too_large_patch_and_bad_files_are_one_line_errors(tmp_path, synthetic_pairs, capsys):
    patches = tmp_path / "p16"
    assert main(["patches", str(synthetic_pairs), str(patches), "--size", "16", "-q"]) == 0
    out = tmp_path / "x.safetensors"
    assert main(small_args(patches, out, "--epochs", "1", "--patch", "24")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "16 x 16 is smaller than the patch size 24" in err
    assert not out.exists()
    # a file that cannot be decoded, met inside a DataLoader worker: one line naming it
    bad = sorted((patches / "label").iterdir())[3]
    bad.write_bytes(bad.read_bytes()[:60])
    assert main(small_args(patches, out, "--epochs", "1", "--workers", "2")) == 2
    err = capsys.readouterr().err  # (after the epoch's progress bar)
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("resjnd: error: ") and bad.name in last and "Traceback" not in err, err
