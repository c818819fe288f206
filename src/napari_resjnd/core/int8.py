"""int8 inference on the CPU through OpenVINO: the fastest CPU path measured (AVX2,
AVX-512 BF16 and AMX alike), and within the accuracy bound.

Needs the optional extra ``pip install "napari-resjnd[int8]"`` (OpenVINO and its
quantiser, NNCF). The scheme, chosen by measurement (docs: Performance), keeps the
JND within the project's bound (mean |dJND| <= 0.25 grey levels, 99.9th
percentile <= 3, against fp32) with room to spare:

- int8, per-channel weights and static activation ranges (global min/max) from
  five downscaled scikit-image photos: the first 21 recursions' convolutions;
- fp32: the input and output convolutions, the last :data:`FP32_RECURSIONS`
  recursions, and every addition (the first feature map added back at each
  recursion, and the global residual ``+ input``). Quantising the additions
  was what made OpenVINO's default int8 inaccurate: it rounds the input image
  itself and the whole residual sum to 8 bits.

The quantised network is built once per weights and kept on disk
(``<cache>/int8/<key>/``: ``model.xml``, ``model.bin``), the key being the
sha256 of the weights with the OpenVINO, NNCF and scheme versions.
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
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ResJNDError
from .files import current_umask
from .model import ResJND
from .paths import cache_dir

#: Bumped whenever the scheme below changes: it invalidates the disk cache.
SCHEME = "s1"
#: The last recursions kept in fp32: with 4, the JND error on photos drops from
#: about 0.09 to 0.02 grey levels for about 12 % more time (measured; docs: Performance).
FP32_RECURSIONS = 4
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
    """True where the int8 backend (OpenVINO and NNCF) is installed; imports neither."""
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "nncf"))


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

    return f"ov{version('openvino')}-nncf{version('nncf')}-{SCHEME}"


def cache_key(model: ResJND) -> str:
    return f"{weights_sha256(model)[:24]}-{_backend_versions()}"


def calibration_images() -> list[np.ndarray]:
    """Five public-domain photos shipped with scikit-image, downscaled (about 0.1 MP
    in all; deterministic). The tests and the docs' figures use other photos."""
    from skimage import data

    return [
        data.astronaut()[::4, ::4],
        data.chelsea()[::4, ::4],
        data.rocket()[::4, ::4],
        data.retina()[::8, ::8],
        data.stereo_motorcycle()[0][::4, ::4],
    ]


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


def quantize(model: ResJND) -> Any:
    """The OpenVINO int8 model of ``model`` (about 15 s for the published network on two cores)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    net = _cpu_copy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = ov.convert_model(net, example_input=torch.zeros(1, 3, 32, 32), input=[(1, 3, -1, -1)])
    convs = [op.get_friendly_name() for op in fp32.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if len(convs) != 2 + 2 * model.recursions:
        raise RuntimeError(f"int8: expected {2 + 2 * model.recursions} convolutions, OpenVINO traced {len(convs)}")
    keep = min(FP32_RECURSIONS, model.recursions)
    fp32_convs = [convs[0], convs[-1], *convs[-1 - 2 * keep : -1]]
    images = [_nchw(img.astype(np.float32) / 255) for img in calibration_images()]
    nncf.set_log_level(logging.ERROR)
    with _quiet_rich():  # NNCF's progress bar; our callers report progress their own way
        return nncf.quantize(
            fp32,
            nncf.Dataset(images),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images),
            ignored_scope=nncf.IgnoredScope(names=fp32_convs, types=["Add"]),
            advanced_parameters=AdvancedQuantizationParameters(
                activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX
            ),
        )


@contextlib.contextmanager
def _quiet_rich() -> Iterator[None]:
    """Silence rich's global console (NNCF draws its bars there), not sys.stdout: this
    runs in a worker thread, and swapping the process's streams would hide other output."""
    try:
        from rich import get_console
    except ImportError:
        yield
        return
    console = get_console()
    quiet, console.quiet = console.quiet, True
    try:
        yield
    finally:
        console.quiet = quiet


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
    log.info("int8: quantising these weights (once; about 20 s on two cores)")
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
    core = _core()  # before NNCF's own: the CPU plugin then stays loaded
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
