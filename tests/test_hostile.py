"""Hostile input, table-driven: every case runs the real ``resjnd`` command on real
files and asserts the exit code, a one-line message (no traceback) and the files
left behind. Classes: arguments, image files, weights, outputs (collisions, full
disk, partial files), evaluation targets, patches, training state, annotation
sessions, ladders, interruptions.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import make_tiny
from PIL import Image

from napari_resjnd.cli import main
from napari_resjnd.core.weights import save_weights


# ---- builders ---------------------------------------------------------------
def photo(h=24, w=32, seed=0, channels=3, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, top + 1, shape).astype(dtype)


def png(path: Path, array=None, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo() if array is None else array).save(path, **save)
    return path


def tiny_weights(tmp: Path, scale: float = 1.0, info: dict | None = None) -> Path:
    net = make_tiny()
    if scale != 1.0:
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(scale)
    path = save_weights(net, tmp / "tiny.safetensors")
    if info is not None:  # rewrite the metadata as given
        from safetensors.torch import load_file, save_file

        save_file(load_file(path), path, metadata={"resjnd": json.dumps(info)})
    return path


def bomb_png(path: Path, w=100_000, h=100_000) -> Path:
    """A valid PNG header claiming w x h pixels, with no image data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def pair_folder(root: Path, n=3, size=(40, 40), odd_last=None) -> Path:
    for i in range(n):
        h, w = odd_last if (odd_last and i == n - 1) else size
        png(root / "data" / f"{i}.png", photo(h, w, seed=i))
        png(root / "label" / f"{i}.png", photo(h, w, seed=i + 100))
    return root


def session_file(path: Path, image: np.ndarray, critical=(2, 1), sha=True, **changes) -> Path:
    from napari_resjnd.core.images import image_sha256
    from napari_resjnd.core.research.annotation import AnnotationSession, PatchRecord

    boxes = [(0, 16, 0, 16), (8, 24, 16, 32)]
    s = AnnotationSession(
        "obs",
        str(path.parent / "img.png"),
        tuple(image.shape),
        "jpeg",
        4,
        seed=0,
        patches=[
            PatchRecord(b, critical=c, trials=[{"level": 2, "same": True}] if c is not None else [])
            for b, c in zip(boxes, critical)
        ],
        image_sha256=image_sha256(image) if sha else None,
    )
    for k, v in changes.items():
        setattr(s, k, v)
    s.save(path)
    return path


# ---- the table --------------------------------------------------------------
@dataclass
class Case:
    id: str
    argv: list  # strings; "{tmp}" is the case's folder; {w} a tiny weights file
    rc: int
    message: str = ""  # regex the one error line must match (empty: no error expected)
    setup: object = None  # callable(tmp) run before the command
    check: object = None  # callable(tmp) with extra assertions on the files left
    marks: list = field(default_factory=list)


def t(*parts):
    return list(parts)


def no_files(*globs):
    def check(tmp):
        for g in globs:
            found = [p for p in tmp.glob(g) if p.is_file()]
            assert not found, f"left behind: {found}"

    return check


def only_complete_sets(out_rel="out"):
    """No temporary, empty or partial files; every JSON sidecar has its maps."""

    def check(tmp):
        out = tmp / out_rel
        files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert not [p for p in files if p.suffix == ".tmp" or ".tmp" in p.name], files
        assert not [p for p in files if p.stat().st_size == 0], files
        for side in [p for p in files if p.suffix == ".json" and not p.name.startswith("summary")]:
            stem = side.name[:-5]
            assert (side.parent / f"{stem}_jnd.tif").is_file(), side

    return check


def _img(tmp, name="a.png", **kw):
    return png(tmp / name, photo(**kw))


# fmt: off
CASES = [
    # -- arguments ------------------------------------------------------------------------
    Case("predict-tile-negative", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--tile", "-3"), 2,
         r"argument --tile: must be 1 or more", _img, no_files("out/*")),
    Case("predict-tile-zero", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--tile", "0"), 2, r"--tile", _img),
    Case("predict-tile-text", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--tile", "big"), 2,
         r"must be a whole number", _img),
    Case("predict-out-is-a-file", t("predict", "{tmp}/a.png", "--out", "{tmp}/a.png", "--weights", "{w}"), 2,
         r"--out .*a\.png is a file; give a folder", _img,
         lambda tmp: np.testing.assert_array_equal(np.asarray(Image.open(tmp / "a.png")), photo())),
    Case("predict-out-below-a-file", t("predict", "{tmp}/a.png", "--out", "{tmp}/a.png/sub", "--weights", "{w}"), 2,
         r"is a file, not a folder", _img),
    Case("predict-device-unknown", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--device", "tpu"), 2,
         r"--device tpu: unknown device", _img, no_files("out/*")),
    Case("predict-device-cuda-absent", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--device", "cuda:7"), 2,
         r"--device cuda:7", _img,
         marks=[pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")]),
    Case("predict-device-empty", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--device", ""), 2,
         r"unknown device", _img),
    Case("predict-shard-out-of-range", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{w}",
                                         "--shard", "3/2"), 2, r"--shard I/N needs 0 <= I < N", _img),
    Case("predict-shard-garbled", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{w}",
                                    "--shard", "half"), 2, r"--shard takes I/N", _img),
    Case("predict-precision-unknown", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--precision", "fp8"), 2,
         r"argument --precision: invalid choice", _img),
    Case("predict-no-images-in-folder", t("predict", "{tmp}/empty", "--out", "{tmp}/out", "--weights", "{w}"), 2,
         r"empty: no image files", lambda tmp: (tmp / "empty").mkdir()),
    Case("predict-unknown-option", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--frobnicate"), 2,
         r"unrecognized arguments: --frobnicate", _img),
    # -- weights --------------------------------------------------------------------------
    Case("weights-missing-file", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{tmp}/no.pth"), 2,
         r"no\.pth: no such file", _img, no_files("out/*")),
    Case("weights-hold-nan", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{tmp}/tiny.safetensors"),
         2, r"hold NaN or infinite", lambda tmp: (_img(tmp), tiny_weights(tmp, scale=float("nan"))),
         no_files("out/*")),
    Case("weights-absurd-recursions", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                        "{tmp}/tiny.safetensors"), 2, r"architecture .* out of range",
         lambda tmp: (_img(tmp), tiny_weights(tmp, info={"architecture": {"channels": 8, "recursions": 10**6}}))),
    Case("weights-negative-recursions", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                          "{tmp}/tiny.safetensors"), 2, r"out of range",
         lambda tmp: (_img(tmp), tiny_weights(tmp, info={"architecture": {"channels": 8, "recursions": -2}}))),
    Case("weights-metadata-is-a-list", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                         "{tmp}/tiny.safetensors"), 2, r"must be a JSON object, not list",
         lambda tmp: (_img(tmp), tiny_weights(tmp, info=[1, 2]))),
    Case("weights-architecture-garbled", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                           "{tmp}/tiny.safetensors"), 2, r"unreadable architecture",
         lambda tmp: (_img(tmp), tiny_weights(tmp, info={"architecture": {"channels": "many"}}))),
    Case("weights-overflow-to-inf", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights",
                                      "{tmp}/tiny.safetensors", "--precision", "fp32"), 1,
         r"NaN or infinite values", lambda tmp: (_img(tmp), tiny_weights(tmp, scale=1e18)), no_files("out/a*")),
    Case("weights-pickled-code", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{tmp}/evil.pth"), 2,
         r"evil\.pth: not a readable PyTorch checkpoint",
         lambda tmp: (_img(tmp), torch.save({"x": os.system}, tmp / "evil.pth"))),
    Case("weights-text-file", t("predict", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{tmp}/w.pth"), 2,
         r"w\.pth: not a readable", lambda tmp: (_img(tmp), (tmp / "w.pth").write_text("hello"))),
    # -- image files ----------------------------------------------------------------------
    Case("tiff-two-channels", t("predict", "{tmp}/two.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"two\.tif: .*looks like an H x W x 2 array",
         lambda tmp: tifffile.imwrite(tmp / "two.tif", photo(24, 32, channels=2)), no_files("out/two*")),
    Case("tiff-five-channels", t("predict", "{tmp}/five.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"five\.tif: .*H x W x 5", lambda tmp: tifffile.imwrite(tmp / "five.tif", photo(24, 32, channels=5))),
    Case("tiff-minisblack-samples", t("predict", "{tmp}/s.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"5 samples per pixel that are not RGB",
         lambda tmp: tifffile.imwrite(tmp / "s.tif", photo(24, 32, channels=5), photometric="minisblack",
                                      planarconfig="contig")),
    Case("tiff-imagej-channels", t("predict", "{tmp}/c.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"2 channels", lambda tmp: tifffile.imwrite(tmp / "c.tif", np.zeros((2, 24, 32), np.uint8),
                                                     imagej=True, metadata={"axes": "CYX"})),
    Case("tiff-planar-rgb", t("predict", "{tmp}/p.tif", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: tifffile.imwrite(tmp / "p.tif", np.moveaxis(photo(24, 32), -1, 0), photometric="rgb",
                                      planarconfig="separate"),
         lambda tmp: (tifffile.imread(tmp / "out" / "p_jnd.tif").shape == (24, 32)) or pytest.fail("planar")),
    Case("tiff-rgb-16-bit", t("predict", "{tmp}/p16.tif", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: tifffile.imwrite(tmp / "p16.tif", photo(24, 32, dtype=np.uint16), photometric="rgb"),
         lambda tmp: json.loads((tmp / "out" / "p16.json").read_text())["input_dtype"] == "uint16"
         or pytest.fail("16-bit")),
    Case("tiff-stack-by-pages", t("predict", "{tmp}/z.tif", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: tifffile.imwrite(tmp / "z.tif", photo(3 * 24, 32, channels=1).reshape(3, 24, 32),
                                      metadata={"axes": "ZYX"}),
         lambda tmp: tifffile.imread(tmp / "out" / "z_jnd.tif").shape == (3, 24, 32) or pytest.fail("stack")),
    Case("tiff-float-nan", t("predict", "{tmp}/n.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"n\.tif.*NaN or infinite",
         lambda tmp: tifffile.imwrite(tmp / "n.tif", np.where(np.eye(24, 32) > 0, np.nan, 0.5).astype(np.float32)),
         no_files("out/n*")),
    Case("tiff-float-0-255", t("predict", "{tmp}/f.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"float pixels span \[0, 255\]",
         lambda tmp: tifffile.imwrite(tmp / "f.tif", photo(24, 32, channels=1).astype(np.float32))),
    Case("png-decompression-bomb", t("predict", "{tmp}/bomb.png", "{tmp}/a.png", "--out", "{tmp}/out",
                                     "--weights", "{w}"), 1, r"bomb\.png: .*(10,000,000,000 pixels|bomb)",
         lambda tmp: (bomb_png(tmp / "bomb.png"), _img(tmp)),
         lambda tmp: (tmp / "out" / "a.json").is_file() or pytest.fail("the batch did not go on")),
    Case("tiff-decompression-bomb", t("predict", "{tmp}/bomb.tif", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"bomb\.tif: 100000 x 100000 = 10,000,000,000 pixels",
         lambda tmp: tifffile.imwrite(tmp / "bomb.tif", shape=(100_000, 100_000), dtype=np.uint8)),
    Case("png-truncated", t("predict", "{tmp}/cut.png", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"cut\.png: not a readable image",
         lambda tmp: (tmp / "cut.png").write_bytes(png(tmp / "full.png", photo(64, 64)).read_bytes()[:200])),
    Case("png-empty-file", t("predict", "{tmp}/e.png", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"e\.png: not a readable image", lambda tmp: (tmp / "e.png").write_bytes(b"")),
    Case("jpg-that-is-text", t("predict", "{tmp}/t.jpg", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"t\.jpg: not a readable image", lambda tmp: (tmp / "t.jpg").write_text("not an image")),
    Case("input-missing", t("predict", "{tmp}/gone.png", "{tmp}/a.png", "--out", "{tmp}/out", "--weights", "{w}"),
         1, r"gone\.png: no such file", _img,
         lambda tmp: (tmp / "out" / "a.json").is_file() or pytest.fail("the batch did not go on")),
    Case("webp-animated", t("predict", "{tmp}/anim.webp", "--out", "{tmp}/out", "--weights", "{w}"), 1,
         r"anim\.webp: 2 frames",
         lambda tmp: Image.fromarray(photo()).save(tmp / "anim.webp", save_all=True,
                                                   append_images=[Image.fromarray(photo(seed=1))])),
    Case("png-grey-alpha", t("predict", "{tmp}/la.png", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: Image.fromarray(photo(channels=1)).convert("LA").save(tmp / "la.png"),
         lambda tmp: json.loads((tmp / "out" / "la.json").read_text())["input_shape"] == [24, 32]
         or pytest.fail("LA")),
    Case("png-16-bit-grey", t("predict", "{tmp}/g16.png", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: Image.fromarray(photo(channels=1, dtype=np.uint16)).save(tmp / "g16.png"),
         lambda tmp: json.loads((tmp / "out" / "g16.json").read_text())["input_dtype"] == "uint16"
         or pytest.fail("16-bit grey")),
    Case("png-palette", t("predict", "{tmp}/pal.png", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: Image.fromarray(photo()).convert("P").save(tmp / "pal.png")),
    Case("jpeg-exif-orientation", t("predict", "{tmp}/o.jpg", "--out", "{tmp}/out", "--weights", "{w}", "-q"), 0, "",
         lambda tmp: _exif_jpeg(tmp / "o.jpg"), lambda tmp: _check_exif(tmp)),
    # -- outputs --------------------------------------------------------------------------
    Case("same-stem-two-formats", t("predict", "{tmp}/x.png", "{tmp}/x.bmp", "--out", "{tmp}/out", "--weights",
                                    "{w}", "-q"), 0, "",
         lambda tmp: (png(tmp / "x.png"), png(tmp / "x.bmp", photo(seed=3))),
         lambda tmp: _assert_names(tmp, ["x.bmp.json", "x.png.json"])),
    Case("same-stem-case-differs", t("predict", "{tmp}/X.png", "{tmp}/x.jpg", "--out", "{tmp}/out", "--weights",
                                     "{w}", "-q"), 0, "",
         lambda tmp: (png(tmp / "X.png"), png(tmp / "x.jpg", photo(seed=3))),
         lambda tmp: _assert_names(tmp, ["X.png.json", "x.jpg.json"])),
    Case("same-name-two-folders", t("predict", "{tmp}/a/x.png", "{tmp}/b/x.png", "--out", "{tmp}/out",
                                    "--weights", "{w}"), 2, r"a/x\.png and .*b/x\.png would write the same files",
         lambda tmp: (png(tmp / "a" / "x.png"), png(tmp / "b" / "x.png", photo(seed=2))), no_files("out/*")),
    Case("same-stem-across-shards", t("predict", "{tmp}/src", "--out", "{tmp}/out", "--weights", "{w}", "--shard",
                                      "1/2", "-q"), 0, "",
         lambda tmp: (png(tmp / "src" / "x.png"), png(tmp / "src" / "x.tif", photo(seed=4)),
                      png(tmp / "src" / "y.png")),
         lambda tmp: _assert_names(tmp, ["x.tif.json"])),
    Case("full-disk-patched", t("predict", "{tmp}/a.png", "{tmp}/b.png", "--out", "{tmp}/out", "--weights", "{w}"),
         1, r"skipping .*: (OSError: )?\[Errno 28\] No space left", lambda tmp: (_img(tmp), _img(tmp, "b.png")),
         only_complete_sets()),
    # -- evaluation -----------------------------------------------------------------------
    Case("evaluate-out-is-a-folder", t("evaluate", "{tmp}/a.png", "--out", "{tmp}", "--jnd", "chou"), 2,
         r"--out .* is a folder; give a file name", _img),
    Case("evaluate-out-not-csv", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.txt", "--jnd", "chou"), 2,
         r"must end in \.csv", _img),
    Case("evaluate-psnr-zero", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--psnr", "0"), 2,
         r"argument --psnr: 0 dB cannot be reached", _img),
    Case("evaluate-psnr-negative", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--psnr", "-5"), 2,
         r"--psnr: -5 dB cannot be reached", _img),
    Case("evaluate-psnr-above-8-bit", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--psnr", "80"), 2,
         r"at most 58\.9 dB", _img),
    Case("evaluate-psnr-nan", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--psnr", "nan"), 2,
         r"must be a finite number", _img),
    Case("evaluate-unknown-map", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--jnd", "chou,magic"), 2,
         r"unknown JND model .magic.", _img, no_files("r.csv")),
    Case("evaluate-plot-format", t("evaluate", "{tmp}/a.png", "--out", "{tmp}/r.csv", "--plot", "{tmp}/p.txt"), 2,
         r"--plot .* must end in \.png or \.pdf or \.svg", _img),
    Case("evaluate-unreadable-image", t("evaluate", "{tmp}/e.png", "--out", "{tmp}/r.csv", "--jnd", "chou"), 2,
         r"no image could be evaluated", lambda tmp: (tmp / "e.png").write_bytes(b"x"), no_files("r.csv")),
    # -- patches --------------------------------------------------------------------------
    Case("patches-size-negative", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "-3"), 2,
         r"argument --size: must be 1 or more", lambda tmp: pair_folder(tmp / "pairs")),
    Case("patches-stride-zero", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "16", "--stride", "0"), 2,
         r"argument --stride", lambda tmp: pair_folder(tmp / "pairs")),
    Case("patches-min-std-negative", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "16", "--min-std", "-1"), 2,
         r"--min-std: must be 0 or more", lambda tmp: pair_folder(tmp / "pairs")),
    Case("patches-late-mismatch", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "16"), 2,
         r"2\.png: pristine is 40 x 40, target is 40 x 32",
         lambda tmp: (pair_folder(tmp / "pairs"), png(tmp / "pairs" / "label" / "2.png", photo(32, 40))),
         no_files("p/**/*")),
    Case("patches-pair-smaller-than-size", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "32"), 2,
         r"2\.png: 24 x 24 is smaller than the patch size 32",
         lambda tmp: pair_folder(tmp / "pairs", odd_last=(24, 24)), no_files("p/**/*")),
    Case("patches-late-unreadable", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "16"), 2,
         r"2\.png: not a readable image",
         lambda tmp: (pair_folder(tmp / "pairs"), _truncate(tmp / "pairs" / "label" / "2.png")),
         no_files("p/**/*")),
    Case("patches-same-stem", t("patches", "{tmp}/pairs", "{tmp}/p", "--size", "20", "-q"), 0, "",
         lambda tmp: (pair_folder(tmp / "pairs", n=1), png(tmp / "pairs" / "data" / "0.bmp", photo(40, 40, seed=7)),
                      png(tmp / "pairs" / "label" / "0.bmp", photo(40, 40, seed=8))),
         lambda tmp: len(list((tmp / "p" / "data").iterdir())) == 8 or pytest.fail("patches overwrote")),
    Case("patches-src-missing", t("patches", "{tmp}/nope", "{tmp}/p", "--size", "16"), 2,
         r"patches SRC .*nope: no such folder"),
    Case("patches-out-is-src", t("patches", "{tmp}/pairs", "{tmp}/pairs", "--size", "16"), 2,
         r"OUT must differ from SRC", lambda tmp: pair_folder(tmp / "pairs")),
    # -- training -------------------------------------------------------------------------
    Case("train-channels-zero", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--channels",
                                  "0"), 2, r"argument --channels: must be 1 or more",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-lr-zero", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--lr", "0"), 2,
         r"argument --lr: must be above 0", lambda tmp: pair_folder(tmp / "pairs")),
    Case("finetune-lr-negative", t("finetune", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--lr",
                                   "-1e-4"), 2, r"argument --lr", lambda tmp: pair_folder(tmp / "pairs")),
    Case("finetune-val-share-too-big", t("finetune", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors",
                                         "--val-fraction", "1.5"), 2,
         r"argument --val-fraction: must be at least 0 and below 1",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-batch-zero", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--batch", "0"),
         2, r"argument --batch", lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-workers-negative", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors",
                                     "--workers", "-1"), 2, r"argument --workers: must be 0 or more",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-out-is-a-folder", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/pairs"), 2,
         r"--out .*pairs is a folder", lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-out-wrong-suffix", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.pth"), 2,
         r"must end in \.safetensors", lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-pairs-missing", t("train", "--pairs", "{tmp}/none", "--out", "{tmp}/m.safetensors"), 2,
         r"--pairs .*none: no such folder"),
    Case("train-resume-missing", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--resume",
                                   "{tmp}/gone.safetensors"), 2, r"--resume .*gone\.safetensors: no such file",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-resume-no-state", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--resume",
                                    "{w}"), 2, r"no tiny\.resume\.pt beside it",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-resume-corrupt", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--resume",
                                   "{w}"), 2, r"tiny\.resume\.pt: not a napari-resjnd resume file",
         lambda tmp: (pair_folder(tmp / "pairs"), (tmp / "tiny.resume.pt").write_bytes(b"PK\x03\x04garbage"))),
    Case("train-resume-foreign", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors", "--resume",
                                   "{w}"), 2, r"not a napari-resjnd resume file \(missing \[",
         lambda tmp: (pair_folder(tmp / "pairs"), torch.save({"model": {}}, tmp / "tiny.resume.pt"))),
    Case("train-override-without-resume", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors",
                                            "--override", "patch"), 2, r"--override goes with --resume",
         lambda tmp: pair_folder(tmp / "pairs")),
    Case("train-worker-reads-bad-file", t("train", "--pairs", "{tmp}/pairs", "--out", "{tmp}/m.safetensors",
                                          "--channels", "8", "--recursions", "2", "--epochs", "1", "--workers", "2",
                                          "--batch", "2", "--val-fraction", "0"), 2,
         r"1\.png: not a readable image",
         lambda tmp: (pair_folder(tmp / "pairs"), _truncate(tmp / "pairs" / "data" / "1.png", keep=120))),
    # -- annotation sessions --------------------------------------------------------------
    Case("merge-malformed-json", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"), 2,
         r"s\.json: not a CPL annotation session", lambda tmp: (tmp / "s.json").write_text("{\"observer\": 1"),
         no_files("pairs/**/*")),
    Case("merge-foreign-json", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"), 2,
         r"s\.json: not a CPL annotation session \(KeyError: missing 'patches'\)",
         lambda tmp: (tmp / "s.json").write_text(json.dumps({"observer": "x"}))),
    Case("merge-other-image-same-shape", t("annotations", "merge", "{tmp}/s1.json", "{tmp}/s2.json", "--out",
                                           "{tmp}/pairs"), 2, r"s2\.json: the session judged another image",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s1.json", photo()),
                      session_file(tmp / "s2.json", photo(seed=9))), no_files("pairs/**/*")),
    Case("merge-negative-level", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"), 2,
         r"levels \[-1\] outside 0\.\.3",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo(), critical=(-1, 1)))),
    Case("merge-unfinished", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"), 2,
         r"session is unfinished \(patches \[1\]",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo(), critical=(2, None))),
         lambda tmp: (not (tmp / "pairs").exists()) or pytest.fail("empty folders left")),
    Case("merge-box-outside", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/pairs"), 2,
         r"box .* is not inside the 20 x 20 image",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo(), image_shape=(20, 20, 3)))),
    Case("merge-out-is-a-file", t("annotations", "merge", "{tmp}/s.json", "--out", "{tmp}/img.png"), 2,
         r"--out .*img\.png is a file",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s.json", photo()))),
    Case("merge-ok-by-content", t("annotations", "merge", "{tmp}/s1.json", "{tmp}/s2.json", "--out",
                                  "{tmp}/pairs"), 0, "",
         lambda tmp: (png(tmp / "img.png"), session_file(tmp / "s1.json", photo()),
                      session_file(tmp / "s2.json", photo(), sha=False)),
         lambda tmp: len(list((tmp / "pairs" / "label").iterdir())) == 2 or pytest.fail("merge")),
    # -- ladders --------------------------------------------------------------------------
    Case("ladder-out-is-a-file", t("ladder", "{tmp}/a.png", "--box", "0,0,16,16", "--out", "{tmp}/a.png"), 2,
         r"--out .*a\.png is a file", _img),
    Case("ladder-one-level", t("ladder", "{tmp}/a.png", "--box", "0,0,16,16", "--levels", "1", "--out",
                               "{tmp}/l"), 2, r"at least 2 levels", _img),
    Case("ladder-box-outside", t("ladder", "{tmp}/a.png", "--box", "20,10,16,16", "--out", "{tmp}/l"), 2,
         r"does not lie inside the 32 x 24 image", _img, no_files("l/*")),
    Case("ladder-box-garbled", t("ladder", "{tmp}/a.png", "--box", "0,0,16", "--out", "{tmp}/l"), 2,
         r"--box takes x,y,w,h", _img),
]
# fmt: on


def _truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _exif_jpeg(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(photo(24, 32)).save(path, exif=exif, quality=95)


def _check_exif(tmp: Path) -> None:
    out = tmp / "out"
    jnd = tifffile.imread(out / "o_jnd.tif")
    assert jnd.shape == (24, 32)  # stored pixel order, as napari shows the file
    with Image.open(out / "o_jnd.png") as im:
        assert im.size == (32, 24) and im.getexif().get(0x0112) == 6  # the tag's meaning is kept
    assert json.loads((out / "o.json").read_text())["exif_orientation"] == 6


def _assert_names(tmp: Path, sidecars: list[str]) -> None:
    got = sorted(p.name for p in (tmp / "out").glob("*.json") if not p.name.startswith("summary"))
    assert got == sorted(sidecars), got


@pytest.fixture
def full_disk(monkeypatch):
    """tifffile writes half of every file, then the disk is full (ENOSPC)."""
    real = tifffile.imwrite

    def half_then_full(path, data=None, *a, **k):
        real(path, data, *a, **k)
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tifffile, "imwrite", half_then_full)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile(case: Case, tmp_path, capsys, request):
    tmp = tmp_path
    weights = tiny_weights(tmp) if any("{w}" in a for a in case.argv) else None
    if case.setup:
        case.setup(tmp)
    if case.id == "full-disk-patched":
        request.getfixturevalue("full_disk")
    argv = [a.replace("{tmp}", str(tmp)).replace("{w}", str(weights)) for a in case.argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == case.rc, err
    assert "Traceback" not in err
    errors = [
        line for line in err.replace("\r", "\n").splitlines() if line.startswith(("resjnd: error:", "resjnd: skipping"))
    ]
    if case.message:
        assert errors, err
        assert any(re.search(case.message, line) for line in errors), errors
    else:
        assert not errors, errors
    if case.check:
        case.check(tmp)


def test_matrix_size():
    assert len(CASES) >= 60


# ---- a real full disk and real interruptions (processes) -----------------------------
def _run(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RESJND_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "napari_resjnd.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


@pytest.mark.slow
def test_small_real_disk_leaves_no_partial_file(tmp_path):
    """A 192 KiB tmpfs fills up during a batch: what is there is complete, the
    summary says what failed and why (needs root to mount; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(disk)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        for i in range(6):
            png(tmp_path / "in" / f"{i}.png", photo(96, 96, seed=i))
        w = tiny_weights(tmp_path)
        p = _run(["predict", str(tmp_path / "in"), "--out", str(disk / "out"), "--weights", str(w), "-q"])
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 1, err
        assert "Traceback" not in err and "no space left" in err.lower(), err
        only_complete_sets("disk/out")(tmp_path)
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_ctrl_c_in_predict_is_one_line_and_130(tmp_path):
    for i in range(4):
        png(tmp_path / "in" / f"{i}.png", photo(256, 256, seed=i))
    w = save_weights(make_tiny(64, 6), tmp_path / "w64.safetensors")
    p = _run(
        [
            "predict",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--weights",
            str(w),
            "--precision",
            "fp32",
            "--device",
            "cpu",
        ]
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "out" / "0.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "resjnd: interrupted"
    only_complete_sets()(tmp_path)


def test_ctrl_c_in_finetune_is_one_line_and_130(tmp_path, monkeypatch, capsys):
    from napari_resjnd.core.training import loop as F

    pair_folder(tmp_path / "pairs")
    w = tiny_weights(tmp_path)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(F, "evaluate_loss", interrupted)
    rc = main(
        [
            "finetune",
            "--pairs",
            str(tmp_path / "pairs"),
            "--out",
            str(tmp_path / "ft.safetensors"),
            "--weights",
            str(w),
            "--device",
            "cpu",
        ]
    )
    assert rc == 130 and capsys.readouterr().err.strip().splitlines()[-1] == "resjnd: interrupted"
    assert not (tmp_path / "ft.safetensors").exists()


def test_a_bug_is_one_line_unless_debug(tmp_path, monkeypatch, capsys):
    from napari_resjnd.core import inference

    _img(tmp_path)
    w = tiny_weights(tmp_path)
    monkeypatch.setattr(inference, "plane_rgb", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    argv = ["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--weights", str(w)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        r"resjnd: error: RuntimeError: boom \(a bug: the traceback is in .*resjnd-crash-.*\.log; .*\)", err[-1]
    )
    with pytest.raises(RuntimeError, match="boom"):
        main(["predict", "--debug", *argv[1:]])


def test_resume_keeps_or_refuses_recorded_settings(tmp_path, capsys):
    pair_folder(tmp_path / "pairs", n=4)
    out = tmp_path / "m.safetensors"
    common = ["train", "--pairs", str(tmp_path / "pairs"), "--channels", "8", "--recursions", "2"]
    common += ["--workers", "0", "--device", "cpu", "--precision", "fp32"]
    base = [*common, "--batch", "2", "--patch", "24", "--val-every", "1"]
    assert main([*base, "--out", str(out), "--epochs", "1"]) == 0
    # a new --patch without --override: refused, nothing changed
    before = out.read_bytes()
    assert main([*base[:-4], "--patch", "16", "--out", str(out), "--epochs", "2", "--resume", str(out)]) == 2
    assert "patch 16 differs from the 24 recorded" in capsys.readouterr().err and out.read_bytes() == before
    # settings left out are the recorded ones (batch 2, patch 24), and the epochs go on
    assert main([*common, "--out", str(out), "--epochs", "2", "--resume", str(out)]) == 0
    h = json.loads(out.with_suffix(".json").read_text())
    assert [e["epoch"] for e in h["epochs"]] == [0, 1, 2] and h["config"]["batch"] == 2
    # an explicit override is recorded; resuming into a new --out carries the best weights along
    new = tmp_path / "new.safetensors"
    assert (
        main(
            [
                *base[:-4],
                "--patch",
                "16",
                "--out",
                str(new),
                "--epochs",
                "3",
                "--resume",
                str(out),
                "--override",
                "patch",
            ]
        )
        == 0
    )
    h = json.loads(new.with_suffix(".json").read_text())
    assert [e["epoch"] for e in h["epochs"]] == [0, 1, 2, 3] and h["config"]["patch"] == 16
    assert h["overrides"] == [{"from_epoch": 3, "patch": {"was": 24, "now": 16}}]
    assert new.is_file()
