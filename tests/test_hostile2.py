"""Hostile input, second round, table-driven: each case runs real ``resjnd`` commands
(or the Python API) on real files, often after an earlier run into the same place,
and asserts the exit code, a one-line message and the files left behind. Classes:
1 earlier runs in the output folder, 2 resume records what ran, 3 the int8 cache
and Ctrl-C, 4 one bad input in a batch, 5 crash lines, 6 merge counts, 7 readers,
8 environment, 9 messages.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from conftest import make_tiny
from test_hostile import pair_folder, photo, png, session_file, tiny_weights

from napari_resjnd.cli import main
from napari_resjnd.core.weights import save_weights

BUG = "this looks like a bug"


@dataclass
class Case:
    id: str
    cls: str  # the class and bullet of the issue ("1a" ... "9d")
    argv: list[str]  # "{tmp}": the case's folder, "{w}": tiny weights
    rc: int
    message: str = ""  # regex one error line must match (empty: none expected)
    setup: Callable[[Path], Any] | None = None
    before: list[list[str]] = field(default_factory=list)  # earlier runs, each must succeed
    check: Callable[[Path, str], Any] | None = None  # (tmp, stdout + stderr of the last run)
    patch: Callable[[pytest.MonkeyPatch, Path], Any] | None = None  # applied before the last run
    marks: list = field(default_factory=list)
    api: Callable[[Path], Any] | None = None  # a Python API case (argv unused), or a real process


def files_in(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def unchanged(folder_rel: str):
    """A check: ``folder_rel`` holds exactly what it held after the earlier runs (the
    test snapshots every folder before the last run)."""

    def check(tmp: Path, out: str) -> None:
        snap = tmp / ".snapshot.json"
        before = json.loads(snap.read_text())[folder_rel]
        now = {k: v.hex() for k, v in files_in(tmp / folder_rel).items()}
        assert now == before, f"{folder_rel} changed: {sorted(set(now) ^ set(before))}"

    return check


def history(tmp: Path, name: str = "m.safetensors") -> dict:
    return json.loads((tmp / name).with_suffix(".json").read_text())


def _late_bad_pairs(tmp: Path) -> None:
    pair_folder(tmp / "pairs", n=4, size=(40, 40))
    pair_folder(tmp / "pairs2", n=4, size=(40, 40))
    path = tmp / "pairs2" / "label" / "3.png"
    path.write_bytes(path.read_bytes()[:120])  # the header reads, the pixels do not


def _two_sessions(tmp: Path) -> None:
    png(tmp / "img.png")
    session_file(tmp / "s.json", photo())
    session_file(tmp / "one.json", photo(), critical=(3,))


def _nan_pair(tmp: Path) -> None:
    pair_folder(tmp / "pairs", n=3, size=(40, 40))
    bad = np.full((40, 40, 3), 0.5, np.float32)
    bad[3, 4, 1] = np.nan
    tifffile.imwrite(tmp / "pairs" / "data" / "2.tif", bad)
    tifffile.imwrite(tmp / "pairs" / "label" / "2.tif", np.full((40, 40, 3), 0.5, np.float32))


def _full_disk_torch_save(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """torch.save as it fails on a full disk: part of the file, then PyTorch's C++ error."""
    real = torch.save

    def half_then_full(obj, f, *a, **k):
        real(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)
        raise RuntimeError(
            "[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 896\n"
            "PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", half_then_full)


def _no_display(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")


def _unlistable(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """A folder that cannot be listed (chmod 000; root ignores the mode, so os.scandir says so)."""
    real = os.scandir
    locked = str(tmp / "locked")

    def scandir(path="."):
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (tmp / "locked").chmod(0)


QUANTISED: list[int] = []


def _int8_cache_is_a_file(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """The int8 cache is a file; quantising is counted (a fresh process: nothing compiled yet)."""
    from napari_resjnd.core import int8

    monkeypatch.setenv("RESJND_INT8_CACHE_DIR", str(tmp / "cachefile"))
    monkeypatch.setattr(int8, "_compiled", {})
    monkeypatch.setattr(int8, "_in_memory", {})
    QUANTISED.clear()
    real = int8.quantize

    def counted(model):
        QUANTISED.append(1)
        return real(model)

    monkeypatch.setattr(int8, "quantize", counted)


def _umask_022(monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    old = os.umask(0o022)
    monkeypatch.setattr("napari_resjnd.core.files.current_umask", lambda: 0o022)
    os.umask(old)


PREDICT = ["predict", "--weights", "{w}", "--device", "cpu", "--precision", "fp32", "-q"]
FT = ["finetune", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--weights", "{w}", "--device", "cpu"]
FT += ["--precision", "fp32", "--batch", "2", "--patch", "16"]
TRAIN = ["train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--channels", "8", "--workers", "0"]
TRAIN += ["--device", "cpu", "--precision", "fp32", "--batch", "2", "--patch", "16"]

# fmt: off
CASES = [
    # -- 1 an output folder that already holds an earlier run ------------------------------
    Case("patches-failing-run-into-earlier-run", "1a", ["patches", "{tmp}/pairs2", "{tmp}/p", "--size", "20"],
         2, r"3\.png: not a readable image", _late_bad_pairs,
         before=[["patches", "{tmp}/pairs", "{tmp}/p", "--size", "20"]], check=unchanged("p")),
    Case("patches-rerun-replaces-its-recorded-set", "1a", ["patches", "{tmp}/pairs", "{tmp}/p", "--size", "40"], 0,
         "", _late_bad_pairs, before=[["patches", "{tmp}/pairs", "{tmp}/p", "--size", "20"]],
         check=lambda tmp, out: (
             sorted(p.name for p in (tmp / "p" / "data").iterdir()) == [f"{i}_y0_x0.png" for i in range(4)]
             and "replaced the earlier run's 16 pairs" in out) or pytest.fail(out)),
    Case("patches-into-unrecorded-pairs", "1a", ["patches", "{tmp}/pairs", "{tmp}/pairs2", "--size", "20"], 2,
         r"pairs2: holds 8 files of an earlier run", _late_bad_pairs, check=unchanged("pairs2")),
    Case("ladder-fewer-levels-into-earlier-ladder", "1b",
         ["ladder", "{tmp}/img.png", "--box", "0,0,16,16", "--levels", "3", "--out", "{tmp}/l"], 0, "",
         lambda tmp: png(tmp / "img.png"),
         before=[["ladder", "{tmp}/img.png", "--box", "0,0,16,16", "--levels", "8", "--out", "{tmp}/l"]],
         check=lambda tmp, out: (
             sorted(p.name for p in (tmp / "l").iterdir())
             == ["ladder.json", "level_00.png", "level_01.png", "level_02.png"]
             and len(json.loads((tmp / "l" / "ladder.json").read_text())["levels"]) == 3
             and "replaced the earlier ladder" in out) or pytest.fail(out)),
    Case("merge-into-earlier-merge", "1c", ["annotations", "merge", "{tmp}/one.json", "--out", "{tmp}/pairs"], 2,
         r"pairs: holds .* earlier run", _two_sessions,
         before=[["annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"]], check=unchanged("pairs")),
    Case("input-named-summary", "1d", [*PREDICT, "{tmp}/in", "--out", "{tmp}/out", "--skip-existing"], 0, "",
         lambda tmp: (png(tmp / "in" / "summary.png"), png(tmp / "in" / "a.png", photo(seed=1))),
         before=[[*PREDICT, "{tmp}/in", "--out", "{tmp}/out"]],
         check=lambda tmp, out: (
             json.loads((tmp / "out" / "summary.json").read_text())["counts"] == {"done": 0, "skipped": 2, "failed": 0}
             and json.loads((tmp / "out" / "summary.png.json").read_text())["source"].endswith("summary.png")
         ) or pytest.fail(out)),
    # -- 2 resume records what ran ----------------------------------------------------------
    Case("resume-lr-override", "2a", [*FT, "--epochs", "2", "--resume", "{tmp}/m.safetensors", "--lr", "0.5",
                                      "--override", "lr"], 0, "",
         lambda tmp: pair_folder(tmp / "pairs"), before=[[*FT, "--epochs", "1"]],
         check=lambda tmp, out: (history(tmp)["epochs"][-1]["lr"] == 0.5
                                 and history(tmp)["hyperparameters"]["lr"] == 0.5) or pytest.fail(str(history(tmp)))),
    Case("resume-other-recursions", "2b", [*TRAIN, "--recursions", "5", "--epochs", "2", "--resume",
                                           "{tmp}/m.safetensors"], 2,
         r"recursions 5 .* 2 recorded in .*m\.safetensors", lambda tmp: pair_folder(tmp / "pairs"),
         before=[[*TRAIN, "--recursions", "2", "--epochs", "1"]]),
    Case("resume-preset-override", "2c", [*FT, "--epochs", "2", "--resume", "{tmp}/m.safetensors", "--preset",
                                          "authors", "--override", "preset"], 0, "",
         lambda tmp: pair_folder(tmp / "pairs"), before=[[*FT, "--epochs", "1"]],
         check=lambda tmp, out: (history(tmp)["hyperparameters"]["optimizer"] == "sgd"
                                 and history(tmp)["config"]["preset"] == "authors") or pytest.fail(out)),
    Case("resume-new-pairs-and-patch", "2d", [*TRAIN[:-2], "--patch", "20", "--recursions", "2", "--epochs", "2",
                                              "--resume", "{tmp}/m.safetensors", "--override", "patch"], 0, "",
         lambda tmp: (pair_folder(tmp / "old"), pair_folder(tmp / "pairs")),
         before=[[*TRAIN[:2], "{tmp}/old", *TRAIN[3:], "--recursions", "2", "--epochs", "1"]],
         check=lambda tmp, out: (history(tmp)["data"]["patch"] == 20 and history(tmp)["config"]["patch"] == 20
                                 and history(tmp)["data"]["pairs_dir"] == str(tmp / "pairs"))
         or pytest.fail(str(history(tmp)["data"]))),
    # -- 3 the int8 cache and signals (more in the slow tests below) -------------------------
    Case("int8-cache-is-a-file", "3a", [*PREDICT[:-3], "--precision", "int8", "{tmp}/in", "--out", "{tmp}/out"], 0,
         "", lambda tmp: ([png(tmp / "in" / f"{i}.png", photo(32, 32, seed=i)) for i in range(3)],
                          (tmp / "cachefile").write_text("x")),
         patch=_int8_cache_is_a_file,
         check=lambda tmp, out: (out.count("kept in memory for this run only") == 1 and QUANTISED == [1]
                                 and len(list((tmp / "out").glob("*_jnd.tif"))) == 3) or pytest.fail(out),
         marks=[pytest.mark.slow]),
    Case("ctrl-c-early-in-quantising", "3b", [], 0, api=lambda tmp: ctrl_c_while_quantising(tmp, 2.0),
         marks=[pytest.mark.slow]),
    Case("ctrl-c-late-in-quantising", "3b", [], 0, api=lambda tmp: ctrl_c_while_quantising(tmp, 6.0),
         marks=[pytest.mark.slow]),
    # -- 4 one bad input stops the batch ----------------------------------------------------
    Case("symlink-loop-among-inputs", "4a", [*PREDICT, "{tmp}/a.png", "{tmp}/loop.png", "--out", "{tmp}/out"], 1,
         r"skipping .*loop\.png: a broken symbolic link or a symlink loop",
         lambda tmp: (png(tmp / "a.png"), os.symlink(tmp / "loop.png", tmp / "loop.png")),
         check=lambda tmp, out: (tmp / "out" / "a_jnd.tif").is_file() or pytest.fail(out)),
    Case("symlink-loop-in-a-folder", "4a", [*PREDICT, "{tmp}/in", "--out", "{tmp}/out"], 1,
         r"skipping .*loop\.png: a broken symbolic link or a symlink loop",
         lambda tmp: (png(tmp / "in" / "a.png"), os.symlink(tmp / "in" / "loop.png", tmp / "in" / "loop.png")),
         check=lambda tmp, out: (tmp / "out" / "a_jnd.tif").is_file() or pytest.fail(out)),
    Case("unreadable-folder", "4b", [*PREDICT, "{tmp}/locked", "--out", "{tmp}/out"], 2,
         r"locked: permission denied", lambda tmp: png(tmp / "locked" / "a.png"), patch=_unlistable),
    Case("recursive-out-inside-input", "4c", [*PREDICT, "{tmp}/in", "--recursive", "--out", "{tmp}/in/out",
                                              "--skip-existing"], 0, "",
         lambda tmp: png(tmp / "in" / "a.png"), before=[[*PREDICT, "{tmp}/in", "--recursive", "--out", "{tmp}/in/out"]],
         check=lambda tmp, out: (
             json.loads((tmp / "in" / "out" / "summary.json").read_text())["counts"]
             == {"done": 0, "skipped": 1, "failed": 0} and not (tmp / "in" / "out" / "out").exists()
         ) or pytest.fail(out)),
    Case("out-above-the-input-folder", "4c", [*PREDICT, "{tmp}/in", "--recursive", "--out", "{tmp}"], 0, "",
         lambda tmp: png(tmp / "in" / "sub" / "a.png"),
         check=lambda tmp, out: (tmp / "sub" / "a_jnd.tif").is_file() or pytest.fail(out)),
    Case("out-is-the-input-folder", "4c", [*PREDICT, "{tmp}/in", "--out", "{tmp}/in", "--skip-existing"], 0, "",
         lambda tmp: png(tmp / "in" / "a.png"), before=[[*PREDICT, "{tmp}/in", "--out", "{tmp}/in"]],
         check=lambda tmp, out: json.loads((tmp / "in" / "summary.json").read_text())["counts"]
         == {"done": 0, "skipped": 1, "failed": 0} or pytest.fail(out)),
    Case("skip-existing-incomplete-set", "4d", [*PREDICT, "{tmp}/a.png", "--out", "{tmp}/out", "--skip-existing"], 0,
         "", lambda tmp: png(tmp / "a.png"), before=[[*PREDICT, "{tmp}/a.png", "--out", "{tmp}/out"]],
         patch=lambda mp, tmp: (tmp / "out" / "a_cpl.png").unlink(),
         check=lambda tmp, out: (tmp / "out" / "a_cpl.png").is_file() or pytest.fail(out)),
    # -- 5 crash lines instead of messages ----------------------------------------------------
    Case("full-disk-writing-checkpoint", "5a", [*FT, "--epochs", "2", "--resume", "{tmp}/m.safetensors"], 2,
         r"m\.resume\.pt: .*disk is full.*previous one is kept", lambda tmp: pair_folder(tmp / "pairs"),
         before=[[*FT, "--epochs", "1"]], patch=_full_disk_torch_save,
         check=lambda tmp, out: (torch.load(tmp / "m.resume.pt", weights_only=True)["epoch"] == 1
                                 and not list(tmp.glob("*.tmp"))) or pytest.fail(out)),
    Case("merge-session-without-patches", "5b", ["annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"], 2,
         r"s\.json: .*no patches", lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo(),
                                                                                  critical=())),
         check=lambda tmp, out: not (tmp / "pairs").exists() or pytest.fail("left files")),
    Case("merge-session-image-null", "5b", ["annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"], 2,
         r"s\.json: .*'image' must be", lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo()),
                                                     _edit_json(tmp / "s.json", image=None)),
         check=lambda tmp, out: not (tmp / "pairs").exists() or pytest.fail("left files")),
    Case("merge-session-seed-is-text", "5b", ["annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"], 2,
         r"s\.json: not a CPL annotation session \(TypeError: 'seed' must be int, not str\)",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo()),
                      _edit_json(tmp / "s.json", seed="x")),
         check=lambda tmp, out: not (tmp / "pairs").exists() or pytest.fail("left files")),
    # -- 6 merge counts -----------------------------------------------------------------------
    Case("merge-same-session-twice", "6a", ["annotations", "merge", "{tmp}/s.json", "{tmp}/s.json", "--out",
                                            "{tmp}/pairs"], 2, r"s\.json and .*s\.json are the same session",
         _two_sessions, check=lambda tmp, out: not (tmp / "pairs").exists() or pytest.fail("left files")),
    Case("merge-byte-identical-copy", "6a", ["annotations", "merge", "{tmp}/s.json", "{tmp}/copy.json", "--out",
                                             "{tmp}/pairs"], 2, r"copy\.json are the same session",
         lambda tmp: (_two_sessions(tmp), (tmp / "copy.json").write_bytes((tmp / "s.json").read_bytes()))),
    Case("merge-same-box-twice", "6b", ["annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"], 2,
         r"s\.json: patches 0 and 1 judge the same box",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo()),
                      _edit_json(tmp / "s.json", same_box=True))),
    # -- 7 readers (Python API) -----------------------------------------------------------------
    Case("tiff-lzw-and-jpeg", "7a", [], 0, api=lambda tmp: _compressed_tiffs(tmp)),
    Case("big-endian-uint16-array", "7b", [], 0, api=lambda tmp: _big_endian(tmp)),
    # -- 8 environment ------------------------------------------------------------------------
    Case("gui-without-display", "8a", ["gui"], 2, r"no display .*xvfb-run", patch=_no_display),
    Case("files-respect-umask", "8b", [*PREDICT, "{tmp}/a.png", "--out", "{tmp}/out"], 0, "",
         lambda tmp: png(tmp / "a.png"), patch=_umask_022,
         check=lambda tmp, out: {oct(p.stat().st_mode & 0o777) for p in (tmp / "out").iterdir()} == {"0o644"}
         or pytest.fail(str({p.name: oct(p.stat().st_mode) for p in (tmp / "out").iterdir()}))),
    # -- 9 messages ----------------------------------------------------------------------------
    Case("nan-in-finetuning-pair", "9a", [*FT, "--epochs", "1"], 2, r"2\.tif: .*NaN", _nan_pair),
    Case("weights-is-a-folder", "9b", [*PREDICT[:1], "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{tmp}/wdir"],
         2, r"wdir: is a folder", lambda tmp: (png(tmp / "a.png"), (tmp / "wdir").mkdir())),
    Case("weights-metadata-wrong-type", "9c", [*PREDICT[:1], "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                               "{tmp}/tiny.safetensors"], 2,
         r"tiny\.safetensors: metadata key 'architecture' must be a JSON object, not list",
         lambda tmp: (png(tmp / "a.png"), tiny_weights(tmp, info={"architecture": [8, 2]}))),
    Case("ladder-given-a-stack", "9d", ["ladder", "{tmp}/stack.tif", "--box", "0,0,16,16", "--out", "{tmp}/l"], 2,
         r"stack\.tif: .*stack of 3", lambda tmp: tifffile.imwrite(tmp / "stack.tif", photo(24, 32, channels=1)[None]
                                                                   .repeat(3, 0), photometric="minisblack"),
         check=lambda tmp, out: not (tmp / "l").exists() or pytest.fail("left files")),
]
# fmt: on


def _compressed_tiffs(tmp: Path) -> None:
    """ImageJ saves LZW, Photoshop often JPEG: both read like the PNG they came from."""
    from napari_resjnd.core.images import read_image

    img = photo(48, 64)
    tifffile.imwrite(tmp / "lzw.tif", img, photometric="rgb", compression="lzw")
    np.testing.assert_array_equal(read_image(tmp / "lzw.tif"), img)
    smooth = np.broadcast_to(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 64, 3)).copy()
    tifffile.imwrite(tmp / "jpeg.tif", smooth, photometric="rgb", compression="jpeg")
    got = read_image(tmp / "jpeg.tif")
    assert got.shape == smooth.shape and np.abs(got.astype(int) - smooth).mean() < 3


def _big_endian(tmp: Path) -> None:
    """A big-endian uint16 array (FITS, some TIFF writers) predicts like the native one."""
    from napari_resjnd import jnd_map, predict

    native = photo(32, 32, dtype=np.uint16)
    big = native.astype(">u2")
    assert big.dtype.byteorder == ">" and big.dtype != np.uint16
    model = make_tiny()
    np.testing.assert_allclose(predict(model, big, device="cpu").jnd, predict(model, native, device="cpu").jnd)
    np.testing.assert_allclose(jnd_map("chou1995", big), jnd_map("chou1995", native))


def _edit_json(path: Path, image: Any = "keep", same_box: bool = False, **fields: Any) -> None:
    d = {**json.loads(path.read_text()), **fields}
    if image != "keep":
        d["image"] = image
    if same_box:
        d["patches"][1]["box"] = d["patches"][0]["box"]
    path.write_text(json.dumps(d))


def _argv(argv: list[str], tmp: Path, weights: Path | None) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{w}", str(weights)) for a in argv]


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.cls}-{c.id}", marks=c.marks) for c in CASES])
def test_hostile2(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    tmp = tmp_path
    if case.api is not None:
        case.api(tmp)
        return
    weights = tiny_weights(tmp) if any("{w}" in a for a in [*case.argv, *(a for b in case.before for a in b)]) else None
    if case.setup:
        case.setup(tmp)
    for argv in case.before:
        assert main(_argv(argv, tmp, weights)) == 0, capsys.readouterr().err
    capsys.readouterr()
    snapshot = {d.name: {k: v.hex() for k, v in files_in(d).items()} for d in tmp.iterdir() if d.is_dir()}
    (tmp / ".snapshot.json").write_text(json.dumps(snapshot))
    if case.patch:
        case.patch(monkeypatch, tmp)
    rc = main(_argv(case.argv, tmp, weights))
    captured = capsys.readouterr()
    err = captured.err
    assert rc == case.rc, err
    assert "Traceback" not in err and BUG not in err, err
    lines = err.replace("\r", "\n").splitlines()
    errors = [line for line in lines if line.startswith(("resjnd: error:", "resjnd: skipping"))]
    if case.message:
        assert any(re.search(case.message, line) for line in errors), errors or err
    else:
        assert not errors, errors
    if case.check:
        case.check(tmp, captured.out + err)


def test_every_class_and_bullet_has_a_case():
    bullets = {"1a", "1b", "1c", "1d", "2a", "2b", "2c", "2d", "3a", "3b", "4a", "4b", "4c", "4d", "5a", "5b"}
    bullets |= {"6a", "6b", "7a", "7b", "8a", "8b", "9a", "9b", "9c", "9d"}
    assert bullets <= {c.cls for c in CASES}


# ---- 3b: Ctrl-C while int8 quantises (a real process and a real signal) -------------------
def ctrl_c_while_quantising(tmp_path: Path, after_s: float) -> None:
    """SIGINT while OpenVINO quantises in its thread: exit 130 and one line, not
    SIGABRT (134) from native threads torn down at interpreter exit."""
    png(tmp_path / "in" / "0.png", photo(64, 64))
    w = save_weights(make_tiny(128, 25), tmp_path / "w.safetensors")  # the published size: quantising takes ~15 s
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RESJND_OFFLINE": "1", "RESJND_INT8_CACHE_DIR": str(tmp_path / "c")}
    argv = ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--weights", str(w)]
    p = subprocess.Popen(
        [sys.executable, "-m", "napari_resjnd.cli", *argv, "--precision", "int8", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "quantising" not in seen and time.monotonic() < deadline:
        seen += p.stderr.readline()
    time.sleep(after_s)  # NNCF is at work in its thread by now
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, seen + err
    assert "terminate called" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "resjnd: interrupted"
    assert not list((tmp_path / "out").glob("*")), "nothing half-written"


def test_a_rerun_that_fails_half_way_leaves_the_earlier_set_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """predict's files of one image are one set: the rerun's CPL PNG fails (after its
    JND TIFF and PNG were written), and every file of the earlier run is byte-identical,
    with no temporary file left behind."""
    from PIL import Image

    from napari_resjnd import predict
    from napari_resjnd.core.outputs import write_outputs

    model = make_tiny()
    out = tmp_path / "out"
    first = write_outputs(predict(model, photo(40, 48, seed=1), device="cpu"), out, "x")
    before = {p.name: p.read_bytes() for p in first}
    rerun = predict(model, photo(40, 48, seed=2), device="cpu")
    real_save, calls = Image.Image.save, []

    def failing_third_file(self, fp, *a, **k):
        calls.append(fp)
        if len(calls) == 2:  # the JND TIFF is tifffile's, the JND PNG the first save: fail the CPL PNG
            raise OSError(5, "Input/output error")
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", failing_third_file)
    with pytest.raises(OSError, match="Input/output"):
        write_outputs(rerun, out, "x")
    assert len(calls) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_ladder_rerun_that_fails_half_way_leaves_the_earlier_ladder(tmp_path: Path, monkeypatch, capsys):
    """The levels and ladder.json are one set: a rerun whose third level fails to write
    leaves the earlier ladder byte-identical, with no temporary file behind."""
    from napari_resjnd.core import files

    png(tmp_path / "img.png", photo(32, 32, seed=5))
    args = ["ladder", str(tmp_path / "img.png"), "--box", "0,0,16,16", "--levels", "5", "--out", str(tmp_path / "l")]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "l").iterdir()}
    real, made = files.png_writer, []

    def third_fails(array):
        made.append(1)
        if len(made) == 3:
            return lambda tmp: (_ for _ in ()).throw(OSError(5, "Input/output error"))
        return real(array)

    monkeypatch.setattr(files, "png_writer", third_fails)
    other_box = [*args[:3], "8,8,16,16", *args[4:]]  # other pixels: every level differs
    assert main(other_box) != 0
    assert "Input/output error" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "l").iterdir()} == before
