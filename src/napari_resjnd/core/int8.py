"""int8 inference on the CPU through OpenVINO: the most accurate reduced precision
measured, within the accuracy bound, and the fastest path on the CPUs measured without
AMX (with AMX, as fast as bf16 within the spread of repeated runs).

Needs the optional extra ``pip install "napari-resjnd[int8]"`` (OpenVINO). The
network and its precision scheme are built in :mod:`.int8_graph`: every
recursion convolution in int8, the last recursions with 16-bit activations in
two int8 passes (in fp32 on CPUs without VNNI or AMX), the input and output
convolutions and every addition in fp32.
It keeps the JND within the project's bound (mean |dJND| <= 0.25 grey levels,
99.9th percentile <= 3, against fp32) with room to spare.

The quantised network is built once per weights and kept on disk
(``<cache>/int8/<key>/``: ``model.xml``, ``model.bin``), the key being the
sha256 of the weights with the OpenVINO and scheme versions.
This module imports OpenVINO only when int8 is used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import int8_graph
from .errors import ResJNDError
from .files import current_umask
from .model import ResJND
from .paths import cache_dir

#: Bumped whenever the scheme in :mod:`.int8_graph` changes: it invalidates the disk cache.
SCHEME = "s2"
#: ``$RESJND_INT8_CACHE_DIR`` overrides where quantised networks are kept.
CACHE_ENV = "RESJND_INT8_CACHE_DIR"
INSTALL_HINT = 'int8 needs OpenVINO: pip install "napari-resjnd[int8]"'

_compiled: dict[tuple[str, int], Any] = {}
#: Quantised networks of this process, by cache key: used when the disk cache is unusable.
_in_memory: dict[str, Any] = {}
log = logging.getLogger(__name__)
_lock = threading.Lock()
_cores: list[Any] = []


def _core() -> Any:
    """The process's one OpenVINO Core, kept for the process's life. OpenVINO's CPU
    plugin gives the thread that loads it an alternate signal stack; if the plugin
    were unloaded (the last Core gone), the next signal would land on freed memory
    and crash the process (seen: at exit, when a child process ended)."""
    import openvino as ov

    with _lock:
        if not _cores:
            _cores.append(ov.Core())
        return _cores[0]


def available() -> bool:
    """True where the int8 backend (OpenVINO) is installed; does not import it."""
    return importlib.util.find_spec("openvino") is not None


def require() -> None:
    """:class:`ResJNDError` with the install command unless :func:`available`."""
    if not available():
        raise ResJNDError(INSTALL_HINT)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return cache_dir() / "int8"


def weights_sha256(model: ResJND) -> str:
    """sha256 of the weights as they are now (fine-tuned ones included) and the architecture."""
    h = hashlib.sha256(repr(model.architecture).encode())
    for name, p in model.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@functools.cache
def _backend_versions() -> str:
    from importlib.metadata import version

    return f"ov{version('openvino')}-{SCHEME}-{int8_graph.scheme_name()}"


def cache_key(model: ResJND) -> str:
    return f"{weights_sha256(model)[:24]}-{_backend_versions()}"


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


def quantize(model: ResJND) -> Any:
    """The OpenVINO int8 model of ``model`` (about 10 s for the published network on two cores)."""
    return int8_graph.quantize(model)


def cached_model_path(model: ResJND, key: str | None = None) -> Path:
    """Where the quantised network for ``model``'s weights is (or will be) kept."""
    return cache_root() / (key or cache_key(model)) / "model.xml"


def is_cached(model: ResJND) -> bool:
    """True if the quantised network for ``model``'s weights is on disk (no quantising to do)."""
    return available() and cached_model_path(model).is_file()


def _build_or_load(model: ResJND, key: str) -> Any:
    import openvino as ov

    path = cached_model_path(model, key)
    if path.is_file() and path.with_suffix(".bin").is_file():
        try:
            model_ov = _core().read_model(path)
            log.info("int8: the quantised network is cached at %s", path.parent)
            return model_ov
        except RuntimeError:  # a damaged entry: rebuild it
            log.warning("int8: the cached network at %s is damaged; quantising again", path.parent)
            shutil.rmtree(path.parent, ignore_errors=True)
    with _lock:
        kept = _in_memory.get(key)
    if kept is not None:  # quantised earlier in this process, the disk cache unusable
        return kept
    log.info("int8: quantising these weights (once; about 10 s on two cores), %s", int8_graph.scheme_name())
    q = quantize(model)
    # Written whole into a sibling folder, then renamed: never a half-written entry.
    try:
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent.parent))
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700: a shared cache must be readable
    except OSError as e:
        log.info("int8: %s; the quantised network is kept in memory for this run only", cache_problem() or e)
        return _keep_in_memory(key, q)
    try:
        ov.save_model(q, tmp / "model.xml", compress_to_fp16=False)
        with contextlib.suppress(OSError):  # another process got there first: keep theirs
            os.replace(tmp, path.parent)
    except (OSError, RuntimeError) as e:  # a full disk: OpenVINO raises RuntimeError
        log.info("int8: could not keep the quantised network in %s (%s); kept in memory", tmp.parent, e)
        _keep_in_memory(key, q)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return q


def _keep_in_memory(key: str, q: Any) -> Any:
    with _lock:
        if len(_in_memory) >= 4:
            _in_memory.pop(next(iter(_in_memory)))
        _in_memory[key] = q
    return q


def cache_problem() -> str | None:
    """Why the disk cache cannot take a quantised network (a file in the way, a
    read-only or unwritable folder), or None; checked before quantising so that
    the user hears it once, not after each image."""
    root = cache_root()
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"the cache {root} cannot be made: {probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"the cache {root} is not writable ({probe})"
    if probe == root:
        try:
            tempfile.TemporaryFile(dir=root).close()
        except OSError as e:
            return f"the cache {root} cannot take files ({e.strerror or e})"
    return None


class Int8Network:
    """A compiled int8 ResJND: :meth:`run` maps an RGB tile to its CPL tile."""

    def __init__(self, compiled: Any, key: str):
        self.compiled = compiled
        self.key = key

    def run(self, tile: np.ndarray, check_stop: Callable[[], None] | None = None) -> np.ndarray:
        """``tile``: H x W x 3 float32 in [0, 1] -> CPL, H x W x 3 float32.

        Runs asynchronously and calls ``check_stop()`` every 50 ms; if it raises,
        the inference is cancelled and the exception goes on.
        """
        req = self.compiled.create_infer_request()
        req.start_async({0: _nchw(tile)})
        while not req.wait_for(50):
            if check_stop is not None:
                try:
                    check_stop()
                except BaseException:
                    req.cancel()
                    with contextlib.suppress(RuntimeError):  # "cancelled": ends in about a second
                        req.wait()
                    raise
        return np.ascontiguousarray(req.get_output_tensor(0).data[0].transpose(1, 2, 0), np.float32)


def _cpu_copy(model: ResJND) -> ResJND:
    net = ResJND(model.channels, model.recursions)
    net.load_state_dict({k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()})
    return net.eval()


def network(model: ResJND, threads: int | None = None, check_stop: Callable[[], None] | None = None) -> Int8Network:
    """The int8 network for ``model``'s current weights: compiled once per weights and
    thread count in this process, quantised once per weights on this machine.

    Quantising (the first call for new weights, about 15-20 s on two cores) runs in
    a thread on a copy of the weights; ``check_stop()`` is called every 100 ms and
    may raise to give up waiting: the thread then finishes and fills the disk cache.
    """
    require()
    core = _core()  # loaded first and kept: the CPU plugin then stays loaded
    threads = int(threads or torch.get_num_threads())
    key = cache_key(model)
    with _lock:
        hit = _compiled.get((key, threads))
    if hit is not None:
        return hit
    result: dict[str, Any] = {}
    net = _cpu_copy(model)

    def build() -> None:
        try:
            result["model"] = _build_or_load(net, key)
        except BaseException as e:  # handed to the waiting thread
            result["error"] = e

    worker = threading.Thread(target=build, name="resjnd-int8-quantise", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if check_stop is not None:
            check_stop()
    if "error" in result:
        raise result["error"]
    compiled = core.compile_model(
        result["model"],
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
    )
    with _lock:
        if len(_compiled) >= 4:
            _compiled.pop(next(iter(_compiled)))
        hit = _compiled[(key, threads)] = Int8Network(compiled, key)
    return hit
