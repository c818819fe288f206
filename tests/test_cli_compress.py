"""`resjnd compress`: complete outputs, atomic writes, bad files, reused maps, ResJND's CPL image."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core import codecs as coding
from napari_resjnd.core.weights import save_weights

REQUIRED = ["image", "jnd", "codec", "quality", "bytes", "bpp", "psnr", "ms_ssim", "ssimulacra2"]


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = [folder / "astro.png", folder / "coffee.png"]
    Image.fromarray(skdata.astronaut()[40:120, 180:260]).save(paths[0])
    Image.fromarray(skdata.coffee()[100:180, 200:280]).save(paths[1])
    return paths


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines()))


@pytest.mark.slow
def test_outputs_are_complete(tmp_path, photos, capsys):
    out = tmp_path / "out"
    args = [*map(str, photos), "--codec", "jpeg,webp", "--jnd", "yang2005,chou1995", "--quality", "30:90:30"]
    assert main(["compress", *args, "--out", str(out), "--save-streams", "--plot", "--workers", "1", "-q"]) == 0
    rd_rows = _rows(out / "rd.csv")
    assert list(rd_rows[0])[: len(REQUIRED)] == REQUIRED
    assert len(rd_rows) == 2 * 2 * 3 * 3  # images x codecs x (none + 2 models) x qualities
    assert {r["jnd"] for r in rd_rows} == {"none", "yang2005", "chou1995"}
    for r in rd_rows:  # every stream on disk, its size and rate as recorded
        stream = out / "streams" / Path(r["image"]).stem / r["codec"] / r["jnd"] / f"q{r['quality']}.{r['codec']}"
        stream = stream.with_suffix(".jpg") if r["codec"] == "jpeg" else stream
        assert stream.stat().st_size == int(r["bytes"])
        assert float(r["bpp"]) == pytest.approx(8 * int(r["bytes"]) / (80 * 80), rel=1e-5)
    bd = _rows(out / "bd_rate.csv")
    assert list(bd[0])[:5] == ["codec", "jnd", "image", "metric", "bd_rate_percent"]
    per_image = [r for r in bd if r["image"] != "mean"]
    means = [r for r in bd if r["image"] == "mean"]
    assert len(per_image) == 2 * 2 * 2 * 5 and len(means) == 2 * 2 * 5  # codecs x models x (images) x metrics
    mean = next(r for r in means if (r["codec"], r["jnd"], r["metric"]) == ("jpeg", "yang2005", "psnr"))
    values = [
        float(r["bd_rate_percent"])
        for r in per_image
        if (r["codec"], r["jnd"], r["metric"]) == ("jpeg", "yang2005", "psnr")
    ]
    assert float(mean["bd_rate_percent"]) == pytest.approx(np.mean(values), rel=1e-4)
    assert all(math.isnan(float(r["bd_rate_percent"])) for r in per_image if r["metric"] == "ms_ssim")  # 80 px
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "astro_jpeg.png",
        "astro_webp.png",
        "coffee_jpeg.png",
        "coffee_webp.png",
    ]
    info = json.loads((out / "codecs.json").read_text())
    assert info["codecs"]["jpeg"] == coding.CODECS["jpeg"].version() and info["images"] == 2
    assert not list(out.rglob("*.tmp"))


def test_bad_file_is_skipped_and_the_rest_coded(tmp_path, photos, capsys):
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    code = main(["compress", str(tmp_path / "in"), "--codec", "jpeg", "--jnd", "chou1995", "--quality", "40,80",
                 "--out", str(out), "--workers", "1", "-q"])  # fmt: skip
    assert code == 1 and "skipping" in capsys.readouterr().err
    assert {r["image"] for r in _rows(out / "rd.csv")} == {"astro.png", "coffee.png"}


def test_a_failed_write_leaves_nothing_half_written(tmp_path, photos, monkeypatch, capsys):
    from napari_resjnd.core.coding import plots

    def broken_plot(points, title, path, metrics):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "rd_plot", broken_plot)
    out = tmp_path / "out"
    code = main(["compress", str(photos[0]), "--codec", "jpeg", "--jnd", "chou1995", "--quality", "40,80", "--plot",
                 "--save-streams", "--out", str(out), "--workers", "1", "-q"])  # fmt: skip
    assert code == 2 and "no image could be coded" in capsys.readouterr().err
    assert [p for p in out.rglob("*") if p.is_file()] == []  # the image's streams went with its failed plot


def test_bad_arguments_are_one_line_and_exit_2(tmp_path, photos, capsys):
    base = ["compress", str(photos[0]), "--out", str(tmp_path / "o")]
    for extra, message in (
        (["--codec", "bpg"], "unknown codec 'bpg'"),
        (["--jnd", "nope"], "unknown JND model 'nope'"),
        (["--quality", "0,50"], "--quality: jpeg takes 1 to 100"),
        (["--quality", "50"], "at least 2 distinct qualities"),
        (["--jnd-dir", str(tmp_path / "missing")], "--jnd-dir"),
    ):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_maps_from_jnd_dir_are_reused(tmp_path, photos, monkeypatch):
    maps = tmp_path / "maps"
    assert main(["predict", str(photos[0]), "--model", "yang2005", "--out", str(maps / "yang2005"), "-q"]) == 0
    from dataclasses import replace

    from napari_resjnd.core import zoo

    def refuse(image):
        raise AssertionError("the map should have been read from --jnd-dir")

    monkeypatch.setitem(zoo.MODELS, "yang2005", replace(zoo.MODELS["yang2005"], compute=refuse))
    out = tmp_path / "out"
    assert main(["compress", str(photos[0]), "--codec", "jpeg", "--jnd", "yang2005", "--quality", "40,80",
                 "--jnd-dir", str(maps), "--out", str(out), "--workers", "1", "-q"]) == 0  # fmt: skip
    assert {r["jnd"] for r in _rows(out / "rd.csv")} == {"none", "yang2005"}


@pytest.mark.slow
def test_resjnd_codes_its_cpl_image_in_parallel_processes(tmp_path, photos):
    weights = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    out = tmp_path / "out"
    assert main(["compress", str(photos[0]), "--codec", "jpeg", "--jnd", "resjnd,resjnd-smooth", "--quality",
                 "40,70,90", "--weights", str(weights), "--precision", "fp32", "--out", str(out),
                 "--workers", "2", "--save-streams", "-q"]) == 0  # fmt: skip
    rows = _rows(out / "rd.csv")
    assert {r["jnd"] for r in rows} == {"none", "resjnd", "resjnd-smooth"}
    plain = out / "streams" / "astro" / "jpeg" / "none" / "q90.jpg"
    cpl = out / "streams" / "astro" / "jpeg" / "resjnd" / "q90.jpg"
    assert plain.read_bytes() != cpl.read_bytes()  # the CPL image, not the original, was coded
    assert json.loads((out / "codecs.json").read_text())["weights"] == "tiny.safetensors"


def test_an_earlier_run_in_out_is_never_overwritten_or_mixed(tmp_path, photos, capsys):
    out = tmp_path / "out"
    args = [str(photos[0]), "--codec", "jpeg", "--jnd", "chou1995", "--quality", "40,70", "--workers", "1"]
    assert main(["compress", *args, "--out", str(out), "--save-streams"]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["compress", *args[:-4], "--quality", "30,60", "--workers", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "earlier compress run" in err and "rd.csv" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # a folder with other files is fine: they are left alone
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["compress", *args, "--out", str(other)]) == 0
    assert (other / "notes.txt").read_text() == "mine" and (other / "rd.csv").is_file()
