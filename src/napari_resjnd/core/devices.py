"""Devices and dtypes: which devices this machine has, and what each precision
computes in. What "auto" means is decided in :mod:`.precision`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Literal

import torch

from .errors import ResJNDError

#: A concrete precision (what "auto" resolves to: :mod:`.precision`).
Precision = Literal["fp32", "bf16", "fp16", "int8"]

#: Let the package pick (a device here; a precision: :mod:`.precision`).
AUTO = "auto"
#: The concrete precisions PyTorch computes in (training and inference), fastest-to-check first.
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")
#: int8: inference only, on the CPU, through OpenVINO (:mod:`.int8`, an optional extra).
INT8: Precision = "int8"
#: The torch dtype each precision computes in.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Peak bytes per pixel of a forward pass at 128 channels, measured on CPU
#: (oneDNN, channels_last): about 2.1 kB in fp32 and 1.1 kB in bf16. int8 (OpenVINO) takes fp32's
#: figure: its peak RSS on a 512 x 512 photo measured a little lower (772 MB against 798 MB).
BYTES_PER_PX = {"fp32": 2300, "bf16": 1300, "fp16": 1300, INT8: 2300}
#: What users can pick as a device name besides the concrete ones.
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def available_devices() -> list[str]:
    """Devices this machine can run on, best first (always ends with 'cpu')."""
    out = []
    if torch.cuda.is_available():
        out += [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return [*out, "cpu"]


def device_choices() -> list[str]:
    """What a device picker offers: "auto", then :func:`available_devices`."""
    return [AUTO, *available_devices()]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = AUTO) -> torch.device:
    """A concrete torch device; :class:`ResJNDError` naming the device if this machine lacks it."""
    if str(device) == AUTO:
        return torch.device(available_devices()[0])
    try:
        d: torch.device | None = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        d = None
    if d is None or d.type not in ("cpu", "cuda", "mps"):
        raise ResJNDError(f"unknown device {str(device)!r}; use {DEVICE_HELP}")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ResJNDError(f"device {str(device)!r} asked for, but PyTorch sees no CUDA GPU here")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ResJNDError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if d.type == "mps" and not _mps_available():
        raise ResJNDError(f"device {str(device)!r} asked for, but PyTorch sees no Apple GPU (MPS) here")
    return d


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """Mixed precision for training: autocast to ``precision``'s dtype (a no-op for fp32)."""
    dtype = DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not torch.float32)
