"""Shared fixtures: an isolated cache, a tiny network, and the official data in ../shared."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_resjnd.core.model import ResJND
from napari_resjnd.core.weights import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = Path(os.environ.get("RESJND_OFFICIAL_DIR", ROOT.parent / "shared" / "resjnd-official"))
OFFICIAL_NAMES = ["1", "230", "368"]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own empty cache and model folder, and no downloads."""
    monkeypatch.setenv("RESJND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RESJND_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RESJND_OFFLINE", "1")
    return tmp_path


def make_tiny(channels: int = 8, recursions: int = 2, seed: int = 0) -> ResJND:
    """A small random ResJND; weights scaled down so the CPL stays near the input."""
    torch.manual_seed(seed)
    m = ResJND(channels, recursions)
    with torch.no_grad():
        m.output.weight.mul_(0.1)
    m.provenance = {"weights": f"tiny-{channels}x{recursions}", "sha256": "0" * 64}
    return m.eval()


@pytest.fixture
def tiny():
    return make_tiny()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def official_checkpoint() -> Path:
    p = OFFICIAL / REGISTRY["resjnd-cplset"].filename
    if not p.is_file():
        pytest.skip(f"official checkpoint not found at {p} (set RESJND_OFFICIAL_DIR) and no network here")
    return p


@pytest.fixture
def official_cache(isolated_dirs):
    """The registry cache pre-filled with a copy of the authors' checkpoint."""
    src = official_checkpoint()
    dst = Path(os.environ["RESJND_CACHE_DIR"]) / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst
