"""Tiled, cancellable inference: image -> :class:`Prediction` (CPL, residual, JND).

Each tile carries a halo of the network's receptive radius (52 px), so a tiled
result equals the whole-image result up to float rounding; at the image border
the network sees zero padding, as in the authors' whole-image run. The default
tile is the whole image when it fits the memory budget, else the largest square
that does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from .images import layout_of, plane_rgb, to_unit_float
from .jnd import jnd_from_residual
from .model import ResJND

PRECISIONS = ("fp32", "bf16", "fp16")
#: "auto" resolves to the fastest precision whose accuracy was measured to be
#: within 0.5 grey level of fp32 (see README, Performance): bf16 where the
#: hardware runs it natively, else fp32.
AUTO = "auto"
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

#: What users can pick: "auto" then the concrete precisions (the CLI and the widgets list these).
PRECISION_CHOICES = (AUTO, *PRECISIONS)


#: Peak bytes per pixel of a forward pass at 128 channels, measured on CPU
#: (oneDNN, channels_last): about 2.1 kB in fp32 and 1.1 kB in bf16.
_BYTES_PER_PX = {"fp32": 2300, "bf16": 1300, "fp16": 1300}
#: Working-memory budget for one CPU tile; keeps a 4 MP run near 1 GB RSS.
CPU_TILE_BUDGET = 700 * 2**20
MIN_TILE = 64


class Cancelled(Exception):
    """Raised when ``should_stop`` asked to stop; nothing partial is returned."""


@dataclass
class Prediction:
    """What ResJND says about one image (or stack).

    ``cpl``: the CPL image in the input's [0, 1] units, same layout as the input
    (grey inputs give a grey CPL: the mean of the network's three channels).
    ``residual``: CPL - input in grey levels, signed, same layout as ``cpl``.
    ``jnd``: ... x H x W float32, absolute grey levels (RMS over R, G, B).
    """

    cpl: np.ndarray
    residual: np.ndarray
    jnd: np.ndarray
    metadata: dict = field(default_factory=dict)


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (always ends with 'cpu')."""
    out = []
    if torch.cuda.is_available():
        out += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return [*out, "cpu"]


def precision_choices(device: str = "auto") -> list[str]:
    """The precisions a picker offers for ``device``: fp16 only where a CUDA GPU runs it."""
    gpu = device.startswith("cuda") or (device == AUTO and available_devices()[0].startswith("cuda"))
    return [p for p in PRECISION_CHOICES if gpu or p != "fp16"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device(available_devices()[0])
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        d = None
    if d is None or d.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:N or mps")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but PyTorch sees no CUDA GPU here")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if d.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r} asked for, but PyTorch sees no Apple GPU (MPS) here")
    return d


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into a concrete precision for ``device``; check the others."""
    if precision == AUTO:
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_has_fast_bf16():
            return "bf16"
        return "fp32"
    check_precision(precision, device)
    return precision


def check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {(AUTO, *PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 is for GPUs; on the CPU use 'bf16' or 'fp32'")


def auto_tile(
    height: int, width: int, device: torch.device, precision: str, channels: int = 128, halo: int = 52
) -> int:
    """Core tile size (px) for this image, device and precision."""
    per_px = _BYTES_PER_PX[precision] * channels / 128
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = 0.6 * free
    else:
        budget = CPU_TILE_BUDGET
        try:
            import psutil

            budget = min(budget, 0.5 * psutil.virtual_memory().available)
        except ImportError:
            pass
    if height * width * per_px <= budget:
        return max(height, width)
    side = int(math.sqrt(budget / per_px)) - 2 * halo
    return max(MIN_TILE, side // 32 * 32)


def tile_boxes(height: int, width: int, tile: int, halo: int):
    """(core box, padded box) pairs covering the image; boxes are (y0, y1, x0, x1)."""
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            yield (
                (y0, y1, x0, x1),
                (
                    max(0, y0 - halo),
                    min(height, y1 + halo),
                    max(0, x0 - halo),
                    min(width, x1 + halo),
                ),
            )


def n_tiles(height: int, width: int, tile: int) -> int:
    return math.ceil(height / tile) * math.ceil(width / tile)


def _weights_version(model: ResJND) -> tuple:
    """Changes whenever the weights change (optimiser steps bump ``_version``)."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


def prepared(model: ResJND, device: torch.device, precision: str) -> ResJND:
    """A copy of ``model`` on ``device`` in ``precision``, channels_last (oneDNN's
    and cuDNN's fast layout), cached on the model until its weights change.

    Reduced precision casts the weights themselves rather than using autocast:
    measured 1.9x faster for bf16 on this CPU, with the same accuracy.
    """
    import copy

    cache = model.__dict__.setdefault("_prepared_copies", {})
    key = (str(device), precision)
    version = _weights_version(model)
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    dtype = {"fp32": torch.float32, **_DTYPES}[precision]
    del model.__dict__["_prepared_copies"]  # not copied into the clone
    try:
        clone = copy.deepcopy(model)
    finally:
        model.__dict__["_prepared_copies"] = cache
    clone = clone.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # tiles repeat one shape: let cuDNN pick kernels
    clone.eval().requires_grad_(False)
    cache[key] = (version, clone)
    return clone


def _forward(model, x: np.ndarray, device, on_step) -> np.ndarray:
    """One padded tile (h x w x 3) -> CPL tile (h x w x 3, float32)."""
    t = torch.from_numpy(x).permute(2, 0, 1)[None]
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    else:
        t = t.to(device)
    t = t.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = model(t, on_step=on_step)
    return y[0].float().permute(1, 2, 0).cpu().numpy()


def predict(
    model: ResJND,
    image: np.ndarray,
    *,
    tile: int | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rgb: bool | None = None,
) -> Prediction:
    """Run ResJND on ``image`` (see :mod:`.images` for accepted inputs).

    ``tile``: core tile size in px (``None``: automatic). ``progress(done, total)``
    is called after each tile; ``should_stop()`` is checked between tiles and
    between the network's recursions, and raises :class:`Cancelled`.
    """
    steps = iter_predict(model, image, tile=tile, device=device, precision=precision, should_stop=should_stop, rgb=rgb)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(done, total)


def iter_predict(
    model: ResJND,
    image: np.ndarray,
    *,
    tile: int | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    should_stop: Callable[[], bool] | None = None,
    rgb: bool | None = None,
) -> Generator[tuple[int, int], None, Prediction]:
    """:func:`predict` as a generator: yields ``(tiles done, tiles total)`` after
    each tile and returns the :class:`Prediction` (napari's generator workers
    and the CLI's progress bar both drive it). Closing it stops the work."""
    t_start = time.perf_counter()
    layout = layout_of(np.asarray(image), rgb)
    unit = to_unit_float(np.asarray(image))
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    net = prepared(model, dev, precision)
    h, w = layout.height, layout.width
    halo = model.receptive_radius
    if tile is None or tile <= 0:
        tile = auto_tile(h, w, dev, precision, model.channels, halo)
    tile = max(int(tile), 1)
    channels_out = 3 if layout.rgb else 1
    cpl = np.empty((layout.n_planes, h, w, channels_out), np.float32)
    res = np.empty_like(cpl)
    jnd = np.empty((layout.n_planes, h, w), np.float32)

    def check_stop(*_):
        if should_stop is not None and should_stop():
            raise Cancelled("prediction cancelled")

    done = 0
    for i in range(layout.n_planes):
        x = plane_rgb(unit, layout, i)
        while True:  # retried with smaller tiles on GPU out-of-memory
            try:
                total = n_tiles(h, w, tile) * layout.n_planes
                plane_cpl = np.empty((h, w, 3), np.float32)
                for k, ((y0, y1, x0, x1), (py0, py1, px0, px1)) in enumerate(tile_boxes(h, w, tile, halo)):
                    check_stop()
                    out = _forward(net, x[py0:py1, px0:px1], dev, check_stop)
                    plane_cpl[y0:y1, x0:x1] = out[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0]
                    yield done + k + 1, total
                break
            except torch.cuda.OutOfMemoryError:
                if tile <= MIN_TILE:
                    raise
                torch.cuda.empty_cache()
                tile = max(MIN_TILE, tile // 2)
        done += n_tiles(h, w, tile)
        if not np.isfinite(plane_cpl).all():
            bad = int(plane_cpl.size - np.count_nonzero(np.isfinite(plane_cpl)))
            raise ValueError(
                f"the network gave {bad} NaN or infinite values with weights "
                f"{(getattr(model, 'provenance', {}) or {}).get('weights', 'unnamed')!r}: "
                "the weights are broken, or too large for this precision"
            )
        r = (plane_cpl - x) * np.float32(255)
        jnd[i] = jnd_from_residual(r)
        if layout.rgb:
            cpl[i], res[i] = plane_cpl, r
        else:
            cpl[i, ..., 0], res[i, ..., 0] = plane_cpl.mean(-1), r.mean(-1)
    check_stop()

    shape = (*layout.leading, h, w) + ((3,) if layout.rgb else ())
    prov = dict(getattr(model, "provenance", {}) or {})
    metadata = {
        "weights": prov.get("weights", "unnamed"),
        "weights_sha256": prov.get("sha256"),
        "architecture": model.architecture,
        "device": str(dev),
        "precision": precision,
        "tile": tile,
        "halo": halo,
        "seconds": round(time.perf_counter() - t_start, 3),
        "input_shape": list(np.shape(image)),
        "input_dtype": str(np.asarray(image).dtype),
        "jnd_units": "grey levels (0-255), RMS over R, G, B of |CPL - input| x 255",
    }
    return Prediction(cpl.reshape(shape), res.reshape(shape), jnd.reshape((*layout.leading, h, w)), metadata)
