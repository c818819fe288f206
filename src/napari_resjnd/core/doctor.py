"""What this machine runs and how fast: the versions, the CPU's features, what
``auto`` picks and why, and (measured) every inference path's speed and error
against fp32 on a small public photo. ``resjnd doctor`` prints it; a bug report
should carry it."""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch

from . import int8, int8_graph
from . import precision as precisions
from .devices import available_devices, cpu_has_fast_bf16
from .errors import library_problem
from .inference import inference_precision, predict
from .model import ResJND


@dataclass(frozen=True)
class PathTiming:
    """One inference path measured on this machine."""

    precision: str
    seconds_per_mp: float
    #: |JND - JND(fp32)| in grey levels: mean and 99.9th percentile.
    mean_error: float
    p999_error: float

    @property
    def within_bound(self) -> bool:
        return precisions.ACCURACY_BOUND.holds(self.mean_error, self.p999_error)


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what Python knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The CPU features that decide speed here (from /proc/cpuinfo where there is one)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return [w for w in wanted if w in flags]


def versions() -> dict[str, str]:
    """The versions a result depends on (packages not installed are left out)."""
    out = {"python": platform.python_version()}
    for name in ("napari-resjnd", "torch", "numpy", "openvino", "napari"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


#: The optional libraries (import names) and what each brings.
OPTIONAL = {
    "openvino": "int8 on the CPU",
    "ssimulacra2": "the SSIMULACRA2 metric",
    "bjontegaard": "BD-rates",
    "pillow_heif": "HEIC coding",
}


def libraries() -> dict[str, str | None]:
    """Each optional library: None where it imports, else why not in one line (one
    installed but failing to import counts as missing)."""
    return {name: library_problem(name) for name in OPTIONAL}


def int8_usable() -> bool:
    """int8 runs here: OpenVINO is installed and imports."""
    return int8.available() and library_problem("openvino") is None


def machine() -> dict[str, object]:
    """This machine in a few facts: CPU, cores, features, devices, native bf16, the optional libraries."""
    return {
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "features": cpu_flags(),
        "native_bf16": cpu_has_fast_bf16(),
        "devices": available_devices(),
        "int8_extra": int8_usable(),
        "int8_scheme": int8_graph.scheme_name(),
        "libraries": {k: why or "ok" for k, why in libraries().items()},
    }


def cpu_paths() -> list[str]:
    """The inference paths this CPU can run: fp32, bf16 where native, int8 with its extra (importing)."""
    return ["fp32", *(["bf16"] if cpu_has_fast_bf16() else []), *(["int8"] if int8_usable() else [])]


def measure(model: ResJND, image: np.ndarray, repeat: int = 1) -> list[PathTiming]:
    """Every CPU path on ``image`` (best of ``repeat`` runs each, after one warm-up run
    that also builds int8's cache), with its error against fp32."""
    mp = image.shape[0] * image.shape[1] / 1e6
    rows, ref = [], None
    for p in cpu_paths():
        predict(model, image, device="cpu", precision=p)  # warm-up: caches, kernels, int8 quantising
        best, jnd = float("inf"), None
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            jnd = predict(model, image, device="cpu", precision=p).jnd
            best = min(best, time.perf_counter() - t0)
        assert jnd is not None
        ref = jnd if ref is None else ref
        err = np.abs(jnd - ref)
        rows.append(PathTiming(p, best / mp, float(err.mean()), float(np.percentile(err, 99.9))))
    return rows


def auto_choice(model: ResJND) -> precisions.Choice:
    """What ``auto`` takes on this machine's CPU for ``model``, and why."""
    return inference_precision(model, precisions.AUTO, torch.device("cpu"))


def fastest_within_bound(rows: list[PathTiming]) -> PathTiming:
    """The measured path ``auto`` should take: the fastest that meets the bound (fp32 always does)."""
    return min((r for r in rows if r.within_bound), key=lambda r: r.seconds_per_mp)
