"""Shared fixtures: an isolated cache, a tiny network, and the official data in ../shared."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_resjnd.core.model import Provenance, ResJND
from napari_resjnd.core.weights import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = Path(os.environ.get("RESJND_OFFICIAL_DIR", ROOT.parent / "shared" / "resjnd-official"))
OFFICIAL_NAMES = ["1", "230", "368"]
JND_REFERENCE = Path(os.environ.get("RESJND_JND_REFERENCE_DIR", ROOT.parent / "shared" / "jnd-reference"))


@pytest.fixture(scope="session")
def int8_cache(tmp_path_factory):
    """One int8 cache for the session: the official network is quantised once (about 20 s)."""
    return tmp_path_factory.mktemp("int8-cache")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch, int8_cache):
    """Every test gets its own empty cache and model folder, and no downloads
    (the int8 networks, built from the weights alone, are shared by the session)."""
    monkeypatch.setenv("RESJND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RESJND_INT8_CACHE_DIR", str(int8_cache))
    monkeypatch.setenv("RESJND_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("RESJND_OFFLINE", "1")
    return tmp_path


def make_tiny(channels: int = 8, recursions: int = 2, seed: int = 0) -> ResJND:
    """A small random ResJND; weights scaled down so the CPL stays near the input."""
    torch.manual_seed(seed)
    m = ResJND(channels, recursions)
    with torch.no_grad():
        m.output.weight.mul_(0.1)
    m.provenance = Provenance(weights=f"tiny-{channels}x{recursions}", sha256="0" * 64)
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


class _ThrottledHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files in 16 KiB pieces, ``delay`` seconds apart (a slow network)."""

    delay = 0.0

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        while piece := source.read(16 * 1024):
            outputfile.write(piece)
            outputfile.flush()
            time.sleep(self.delay)


def _serve(tmp_path, delay: float):
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    handler = type("Handler", (_ThrottledHandler,), {"delay": delay})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, www, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def server(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/www: (www, base URL)."""
    httpd, www, base = _serve(tmp_path, 0.0)
    yield www, base
    httpd.shutdown()


@pytest.fixture
def slow_server(tmp_path):
    """Like ``server``, but 16 KiB every 50 ms (about 320 KiB/s)."""
    httpd, www, base = _serve(tmp_path, 0.05)
    yield www, base
    httpd.shutdown()
