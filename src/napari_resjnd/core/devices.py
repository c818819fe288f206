"""Devices, precisions and dtypes: the one place these rules are written.

Inference, training, the CLI and the widgets take their choices from here, so a
new precision (int8, say) is added once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

#: The concrete precisions PyTorch computes in (training and inference), fastest-to-check first.
PRECISIONS = ("fp32", "bf16", "fp16")
#: int8: inference only, on the CPU, through OpenVINO (:mod:`.int8`, an optional extra).
INT8 = "int8"
#: The concrete precisions inference offers.
INFERENCE_PRECISIONS = (*PRECISIONS, INT8)
#: "auto" resolves to the fastest precision whose accuracy was measured to be
#: within the bound (see the docs' Performance page): on a GPU bf16 (or fp16);
#: on a CPU bf16 where it runs natively, else int8 for inference with the
#: registry weights where the int8 extra is installed, else fp32.
AUTO = "auto"
#: What users can pick for training: "auto" then the concrete precisions.
PRECISION_CHOICES = (AUTO, *PRECISIONS)
#: What users can pick for inference (the CLI's predict and the Predict widget list these).
INFERENCE_PRECISION_CHOICES = (AUTO, *INFERENCE_PRECISIONS)
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


def precision_choices(device: str = AUTO, *, inference: bool = False) -> list[str]:
    """The precisions a picker offers for ``device``: fp16 only where a CUDA GPU runs
    it; int8 (inference only) where the device is the CPU."""
    gpu = device.startswith("cuda") or (device == AUTO and available_devices()[0].startswith("cuda"))
    cpu = device == "cpu" or (device == AUTO and available_devices()[0] == "cpu")
    choices = INFERENCE_PRECISION_CHOICES if inference else PRECISION_CHOICES
    return [p for p in choices if (gpu or p != "fp16") and (cpu or p != INT8)]


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


def resolve_precision(precision: str, device: torch.device, *, inference: bool = False, auto_int8: bool = False) -> str:
    """Turn "auto" into a concrete precision for ``device``; check the others.

    ``inference``: int8 may be asked for. ``auto_int8``: "auto" may pick int8 (the
    caller runs weights whose int8 accuracy was measured: :func:`.int8.measured`).
    """
    if precision == AUTO:
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu" and cpu_has_fast_bf16():
            return "bf16"
        if device.type == "cpu" and inference and auto_int8:
            from . import int8

            if int8.available():
                return INT8
        return "fp32"
    check_precision(precision, device, inference=inference)
    return precision


def check_precision(precision: str, device: torch.device, *, inference: bool = False) -> None:
    """ValueError unless ``precision`` is one of the precisions and runs on ``device``."""
    if precision == INT8 and not inference:
        raise ValueError("int8 is for inference (predict) only; train in 'fp32' or 'bf16'")
    if precision not in INFERENCE_PRECISIONS:
        allowed = INFERENCE_PRECISION_CHOICES if inference else PRECISION_CHOICES
        raise ValueError(f"precision must be one of {allowed}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 is for GPUs; on the CPU use 'bf16', 'int8' or 'fp32'")
    if precision == INT8:
        if device.type != "cpu":
            raise ValueError(f"int8 runs on the CPU (OpenVINO), not on {str(device)!r}; use --device cpu")
        from . import int8

        int8.require()


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """Mixed precision for training: autocast to ``precision``'s dtype (a no-op for fp32)."""
    dtype = DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not torch.float32)
