"""Devices, precisions and dtypes: the one place these rules are written.

Inference, training, the CLI and the widgets take their choices from here, so a
new precision (int8, say) is added once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

#: The concrete precisions, fastest-to-check first.
PRECISIONS = ("fp32", "bf16", "fp16")
#: "auto" resolves to the fastest precision whose accuracy was measured to be
#: within 0.5 grey level of fp32 (see the docs' Performance page): bf16 where
#: the hardware runs it natively, else fp32.
AUTO = "auto"
#: What users can pick: "auto" then the concrete precisions (the CLI and the widgets list these).
PRECISION_CHOICES = (AUTO, *PRECISIONS)
#: The torch dtype each precision computes in.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Peak bytes per pixel of a forward pass at 128 channels, measured on CPU
#: (oneDNN, channels_last): about 2.1 kB in fp32 and 1.1 kB in bf16.
BYTES_PER_PX = {"fp32": 2300, "bf16": 1300, "fp16": 1300}
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


def precision_choices(device: str = AUTO) -> list[str]:
    """The precisions a picker offers for ``device``: fp16 only where a CUDA GPU runs it."""
    gpu = device.startswith("cuda") or (device == AUTO and available_devices()[0].startswith("cuda"))
    return [p for p in PRECISION_CHOICES if gpu or p != "fp16"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = AUTO) -> torch.device:
    """A concrete torch device; ValueError naming the device if this machine lacks it."""
    if str(device) == AUTO:
        return torch.device(available_devices()[0])
    try:
        d: torch.device | None = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        d = None
    if d is None or d.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {str(device)!r}; use {DEVICE_HELP}")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but PyTorch sees no CUDA GPU here")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if d.type == "mps" and not _mps_available():
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
    """ValueError unless ``precision`` is one of :data:`PRECISIONS` and runs on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 is for GPUs; on the CPU use 'bf16' or 'fp32'")


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """Mixed precision for training: autocast to ``precision``'s dtype (a no-op for fp32)."""
    dtype = DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not torch.float32)
