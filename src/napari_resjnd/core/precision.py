"""What "auto" means, decided in one function that reads top to bottom, and the
checks on a precision asked for by name.

Every caller (inference, training, the CLI, the widgets) asks :func:`choose`,
which returns the precision with the reason for it; inference logs the reason
and records it in the prediction's metadata. The rules, and the measurements
behind them, are on the docs' *Precision and exactness* page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from . import int8
from .devices import AUTO, INT8, PRECISIONS, Precision, available_devices, cpu_has_fast_bf16
from .errors import ResJNDError

log = logging.getLogger(__name__)

#: The concrete precisions inference offers.
INFERENCE_PRECISIONS: tuple[Precision, ...] = (*PRECISIONS, INT8)
#: What users can pick for training: "auto" then the concrete precisions.
PRECISION_CHOICES = (AUTO, *PRECISIONS)
#: What users can pick for inference (the CLI's predict and the Predict widget list these).
INFERENCE_PRECISION_CHOICES = (AUTO, *INFERENCE_PRECISIONS)


@dataclass(frozen=True)
class Bound:
    """How far a reduced precision's JND may be from fp32's, in grey levels, on
    held-out photos: the one accuracy bound every faster path is held to."""

    mean: float = 0.25
    p999: float = 3.0

    def holds(self, mean_error: float, p999_error: float) -> bool:
        return mean_error <= self.mean and p999_error <= self.p999


#: The bound: mean |JND - JND(fp32)| <= 0.25 and 99.9th percentile <= 3 grey levels.
ACCURACY_BOUND = Bound()


@dataclass(frozen=True)
class Choice:
    """A concrete precision and why it was taken."""

    precision: Precision
    reason: str


def choose(requested: str, device: torch.device, *, inference: bool = False, registry_weights: bool = False) -> Choice:
    """The precision to run in, and why. ``inference``: int8 may be used;
    ``registry_weights``: the weights are a registry entry's, whose int8 accuracy
    was measured (any weights may still ask for int8 by name).

    "auto", in order: a CUDA GPU takes bf16 (fp16 where the GPU lacks bf16); the
    CPU takes int8 for inference with registry weights when the int8 extra is
    installed (the most accurate reduced precision measured, and the fastest path on
    the CPUs measured without AMX; with AMX as fast as bf16 within the spread of
    repeated runs); else bf16 where the
    CPU runs it natively; else fp32. An Apple GPU (mps) runs fp32.
    """
    if requested != AUTO:
        check(requested, device, inference=inference)
        return Choice(requested, "asked for")  # type: ignore[arg-type]  # checked above
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Choice("bf16", "auto: this CUDA GPU runs bf16")
        return Choice("fp16", "auto: this CUDA GPU lacks bf16")
    if device.type != "cpu":
        return Choice("fp32", f"auto: {device.type} runs fp32")
    if inference and registry_weights and int8.available():
        return Choice(INT8, "auto: int8 extra installed, registry weights (measured within the bound)")
    if cpu_has_fast_bf16():
        why = "" if inference and registry_weights else " (int8: registry weights and inference only)"
        return Choice("bf16", f"auto: this CPU runs bf16 natively{why}")
    if inference and registry_weights:
        return Choice("fp32", f"auto: no native bf16, and int8 needs its extra ({int8.INSTALL_HINT})")
    return Choice("fp32", "auto: this CPU has no native bf16")


def resolve(requested: str, device: torch.device, *, inference: bool = False, registry_weights: bool = False) -> str:
    """:func:`choose`'s precision alone; the decision is logged."""
    choice = choose(requested, device, inference=inference, registry_weights=registry_weights)
    log.info("precision %s on %s (%s)", choice.precision, device, choice.reason)
    return choice.precision


def check(precision: str, device: torch.device, *, inference: bool = False) -> None:
    """:class:`ResJNDError` unless ``precision`` is one of the precisions and runs on ``device``."""
    if precision == INT8 and not inference:
        raise ResJNDError("int8 is for inference (predict) only; train in 'fp32' or 'bf16'")
    if precision not in INFERENCE_PRECISIONS:
        allowed = INFERENCE_PRECISION_CHOICES if inference else PRECISION_CHOICES
        raise ResJNDError(f"precision must be one of {allowed}, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ResJNDError("fp16 is for GPUs; on the CPU use 'bf16', 'int8' or 'fp32'")
    if precision == INT8:
        if device.type != "cpu":
            raise ResJNDError(f"int8 runs on the CPU (OpenVINO), not on {str(device)!r}; use --device cpu")
        int8.require()


def choices(device: str = AUTO, *, inference: bool = False) -> list[str]:
    """The precisions a picker offers for ``device``: fp16 only where a CUDA GPU runs
    it; int8 (inference only) where the device is the CPU."""
    first = available_devices()[0]
    gpu = device.startswith("cuda") or (device == AUTO and first.startswith("cuda"))
    cpu = device == "cpu" or (device == AUTO and first == "cpu")
    offered = INFERENCE_PRECISION_CHOICES if inference else PRECISION_CHOICES
    return [p for p in offered if (gpu or p != "fp16") and (cpu or p != INT8)]
