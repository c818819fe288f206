"""`resjnd predict` end to end on real files; errors are one line and a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import make_tiny
from PIL import Image

from napari_resjnd.cli import main
from napari_resjnd.core.weights import save_weights


@pytest.fixture
def tiny_file(tmp_path):
    return save_weights(make_tiny(), tmp_path / "tiny.safetensors")


def test_predict_writes_maps_and_provenance(tmp_path, tiny_file, rng, capsys):
    img = rng.integers(0, 256, (33, 41, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img[..., 0]).save(tmp_path / "grey.bmp")
    out = tmp_path / "out"
    rc = main(
        [
            "predict",
            str(tmp_path / "a.png"),
            str(tmp_path / "grey.bmp"),
            "--out",
            str(out),
            "--weights",
            str(tiny_file),
            "--tile",
            "16",
        ]
    )
    assert rc == 0
    jnd = tifffile.imread(out / "a_jnd.tif")
    assert jnd.dtype == np.float32 and jnd.shape == (33, 41)
    png = np.asarray(Image.open(out / "a_jnd.png"))
    assert png.dtype == np.uint8 and np.abs(png.astype(float) - np.clip(np.rint(jnd), 0, 255)).max() == 0
    cpl = np.asarray(Image.open(out / "a_cpl.png"))
    assert cpl.shape == (33, 41, 3)
    meta = json.loads((out / "a.json").read_text())
    assert meta["weights"] == "tiny.safetensors" and meta["source"].endswith("a.png")
    assert meta["tile"] == 16 and meta["jnd_png_scale"] == "absolute"
    assert np.asarray(Image.open(out / "grey_cpl.png")).shape == (33, 41)
    assert "a.png: JND mean" in capsys.readouterr().out


def test_max_scale_png_reaches_255(tmp_path, tiny_file, rng):
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert (
        main(
            [
                "predict",
                str(tmp_path / "a.png"),
                "--out",
                str(tmp_path / "o"),
                "--weights",
                str(tiny_file),
                "--jnd-scale",
                "max",
                "-q",
            ]
        )
        == 0
    )
    assert np.asarray(Image.open(tmp_path / "o" / "a_jnd.png")).max() == 255


def test_bad_image_is_skipped_and_the_rest_processed(tmp_path, tiny_file, rng, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    rc = main(
        [
            "predict",
            str(tmp_path / "broken.png"),
            str(tmp_path / "missing.png"),
            str(tmp_path / "ok.png"),
            "--out",
            str(tmp_path / "o"),
            "--weights",
            str(tiny_file),
            "-q",
        ]
    )
    assert rc == 1
    assert (tmp_path / "o" / "ok_jnd.tif").exists()
    err = capsys.readouterr().err
    assert "skipping" in err and "broken.png" in err and "missing.png" in err


@pytest.mark.slow
def test_bad_weights_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    r = subprocess.run(
        [sys.executable, "-m", "napari_resjnd.cli", "predict", "x.png", "--out", str(tmp_path), "--weights", str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resjnd: error:") and "bad.pth" in lines[0]


def make_tree(root, rng, names):
    for rel in names:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(p)


def test_folders_recursive_shards_cover_every_file_once(tmp_path, tiny_file, rng):
    src = tmp_path / "src"
    names = [f"a/{i}.png" for i in range(5)] + [f"b/c/{i}.png" for i in range(4)] + ["top.bmp", "a/0.bmp"]
    make_tree(src, rng, names)
    out = tmp_path / "out"
    seen = []
    for i in range(3):
        assert (
            main(
                [
                    "predict",
                    str(src),
                    "--recursive",
                    "--shard",
                    f"{i}/3",
                    "--out",
                    str(out),
                    "--weights",
                    str(tiny_file),
                    "-q",
                ]
            )
            == 0
        )
        s = json.loads((out / f"summary-shard-{i}-of-3.json").read_text())
        seen += s["done"]
    assert sorted(seen) == sorted(str(src / n) for n in names)  # disjoint and complete
    assert (out / "b" / "c" / "3_jnd.tif").exists()
    # a/0.png and a/0.bmp share a stem: both are named after their whole file name
    assert (out / "a" / "0.png.json").exists() and (out / "a" / "0.bmp_jnd.png").exists()
    assert not (out / "a" / "0.json").exists() and (out / "a" / "1.json").exists()
    assert main(["predict", str(src), "--out", str(tmp_path / "flat"), "--weights", str(tiny_file), "-q"]) == 0
    assert json.loads((tmp_path / "flat" / "summary.json").read_text())["counts"]["done"] == 1  # top.bmp only


def test_skip_existing_resumes(tmp_path, tiny_file, rng):
    src = tmp_path / "src"
    make_tree(src, rng, [f"{i}.png" for i in range(4)])
    out = tmp_path / "out"
    assert (
        main(["predict", str(src / "0.png"), str(src / "1.png"), "--out", str(out), "--weights", str(tiny_file), "-q"])
        == 0
    )
    (out / "1.json").unlink()  # as if interrupted before the sidecar was written
    assert main(["predict", str(src), "--skip-existing", "--out", str(out), "--weights", str(tiny_file), "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert sorted(Path(p).name for p in s["skipped"]) == ["0.png"]
    assert sorted(Path(p).name for p in s["done"]) == ["1.png", "2.png", "3.png"]


@pytest.mark.parametrize("flag", [[], ["--no-pipeline"]])
def test_pipeline_and_plain_give_identical_files(tmp_path, tiny_file, rng, flag):
    src = tmp_path / "src"
    make_tree(src, rng, [f"{i}.png" for i in range(6)])
    (src / "bad.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["predict", str(src), "--out", str(out), "--weights", str(tiny_file), "-q", *flag]) == 1
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"] == {"done": 6, "skipped": 0, "failed": 1} and "bad.png" in next(iter(s["failed"]))
    from napari_resjnd import load_model, predict

    ref = predict(load_model(tiny_file), np.asarray(Image.open(src / "4.png")), precision="auto").jnd
    np.testing.assert_array_equal(tifffile.imread(out / "4_jnd.tif"), ref)


def test_bad_shard_spec(tmp_path, tiny_file):
    assert main(["predict", "x.png", "--shard", "3/3", "--out", str(tmp_path), "--weights", str(tiny_file)]) == 2


@pytest.mark.parametrize("model", ["wu2013", "chou"])
def test_predict_with_a_classic_model_needs_no_weights(tmp_path, model):
    from skimage import data as skdata

    import napari_resjnd as rj

    img = skdata.coffee()[:48, :64]
    Image.fromarray(img).save(tmp_path / "c.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "c.png"), "--model", model, "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["c.json", "c_jnd.png", "c_jnd.tif", "summary.json"]
    np.testing.assert_allclose(tifffile.imread(out / "c_jnd.tif"), rj.jnd_map(model, img), rtol=1e-6)
    canonical = "chou1995" if model == "chou" else model
    assert json.loads((out / "c.json").read_text())["weights"] == f"classic:{canonical}"
    assert json.loads((out / "summary.json").read_text())["weights"] == f"classic:{canonical}"


def _parse(argv: list[str]):
    from napari_resjnd.cli import build_parser

    return build_parser().parse_args(argv)


def test_validation_options_read_the_same_in_finetune_and_train(capsys):
    """--val-fraction is a share in both commands, --val-dir a folder (train); the old
    --val spellings keep their meaning and say which option replaces them."""
    ft = _parse(["finetune", "--pairs", "p", "--out", "o.safetensors", "--val-fraction", "0.3"])
    tr = _parse(["train", "--pairs", "p", "--out", "o.safetensors", "--val-fraction", "0.3", "--val-dir", "v"])
    assert ft.val_fraction == tr.val_fraction == 0.3 and tr.val == "v"
    assert capsys.readouterr().err == ""

    old_ft = _parse(["finetune", "--pairs", "p", "--out", "o.safetensors", "--val", "0.2"])
    assert old_ft.val_fraction == 0.2
    assert "--val is deprecated; use --val-fraction" in capsys.readouterr().err
    old_tr = _parse(["train", "--pairs", "p", "--out", "o.safetensors", "--val", "folder"])
    assert old_tr.val == "folder"
    assert "--val is deprecated; use --val-dir" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["finetune", "train"])
def test_override_offers_only_settings_the_command_can_change(command, capsys):
    """A setting no option of the command sets cannot differ on resume, so --override
    refuses it; every setting it offers is one the command has an option for."""
    from napari_resjnd.cli import build_parser
    from napari_resjnd.cli.training import FINETUNE_OVERRIDABLE, TRAIN_OVERRIDABLE
    from napari_resjnd.core.training.finetune import RESUME_KEYS

    offered = FINETUNE_OVERRIDABLE if command == "finetune" else TRAIN_OVERRIDABLE
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    dests = {a.dest for a in sub._actions}
    assert set(offered) <= dests and set(offered) <= set(RESUME_KEYS)
    assert not (set(RESUME_KEYS) - set(offered)) & dests  # nothing settable is left out
    with pytest.raises(SystemExit) as exc:
        _parse([command, "--pairs", "p", "--out", "o.safetensors", "--resume", "r", "--override", "val_by"])
    assert exc.value.code == 2
    assert "invalid choice: 'val_by'" in capsys.readouterr().err
