"""The int8 ResJND network as an OpenVINO graph, and why each part has the precision it has.

On a CPU with int8 dot-product instructions (AVX-512 VNNI, AMX) every convolution
of the 25 recursions runs in int8; no recursion pays for fp32. The scheme (chosen
by measurement; docs: Performance):

- weights: int8, symmetric, one scale per output channel;
- activations (the input of each recursion convolution): unsigned 8-bit over
  ``[0, max]``, ``max`` the largest value seen on five calibration photos;
- the last :data:`TWO_PASS_RECURSIONS` recursions feed their convolutions
  16-bit activations in two int8 passes: ``a = q_hi + q_lo`` where ``q_hi`` is
  the 8-bit value and ``q_lo`` the 8-bit remainder (a 255x finer step), so
  ``conv(a) = conv(q_hi) + conv(q_lo)``. The last recursions' activation
  rounding is what reaches the JND directly: 8 bits there cost about 0.09 grey
  levels; two passes, about 0.02;
- fp32: the input and output convolutions (3 channels: under 0.1 % of the work)
  and every addition (the first feature map added back at each recursion and
  the global residual ``+ input``: 8 bits there would round the image itself).

Without those instructions (AVX2 only, AVX-512 without VNNI) an int8 convolution
costs more than half an fp32 one, so two passes would be slower than fp32: there
the last :data:`FP32_RECURSIONS` recursions stay fp32 instead (:func:`cpu_scheme`).

OpenVINO's low-precision transformations turn each FakeQuantize -> Convolution
pair into an int8 convolution when the network is compiled.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .model import ResJND

#: The last recursions whose convolutions take two int8 passes (16-bit activations).
TWO_PASS_RECURSIONS = 6
#: Two-pass activation ranges are this much wider than seen in calibration: the
#: low pass restores the resolution, so the margin costs no accuracy.
TWO_PASS_MARGIN = 2.0
#: Without int8 dot products: the last recursions kept in fp32 instead of two passes.
FP32_RECURSIONS = 4


def has_int8_dot_products() -> bool:
    """True where oneDNN may use AVX-512 VNNI or AMX int8 instructions on this CPU
    (``$ONEDNN_MAX_CPU_ISA`` capping them counts as their absence)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap and cap != "ALL" and not any(k in cap for k in ("VNNI", "BF16", "AMX", "AVX10")):
        return False
    import torch.cpu

    probes = [getattr(torch.cpu, n, None) for n in ("_is_vnni_supported", "_is_amx_tile_supported")]
    if all(p is None for p in probes):  # a torch without the probes: the kernel's flags
        try:
            with open("/proc/cpuinfo") as f:
                return any(w in f.read() for w in ("avx512_vnni", "amx_int8"))
        except OSError:
            return False
    return any(bool(p()) for p in probes if p is not None)


def cpu_scheme() -> dict[str, int]:
    """:func:`build`'s arguments for this CPU: two int8 passes with VNNI or AMX, else fp32."""
    if has_int8_dot_products():
        return {"two_pass": TWO_PASS_RECURSIONS, "fp32": 0}
    return {"two_pass": 0, "fp32": FP32_RECURSIONS}


def scheme_name() -> str:
    """A short name of :func:`cpu_scheme`'s choice, for logs and the cache key."""
    s = cpu_scheme()
    return f"two-pass{s['two_pass']}" if s["two_pass"] else f"fp32-last{s['fp32']}"


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


def _unit_tensor(x: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 1 x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32) / 255)


@torch.inference_mode()
def activation_ranges(model: ResJND, images: list[np.ndarray]) -> np.ndarray:
    """The largest input of each recursion convolution over ``images`` (fp32, exact):
    ``2 * recursions`` values, conv1 then conv2 of each recursion."""
    w_in, w1, w2 = (m.weight.detach().float().cpu() for m in (model.input, model.conv1, model.conv2))
    highest = np.zeros(2 * model.recursions)
    for img in images:
        x = _unit_tensor(img).contiguous(memory_format=torch.channels_last)
        f0 = F.relu(F.conv2d(F.relu(x), w_in, padding=1))
        out = f0
        for i in range(model.recursions):
            a1 = F.relu(out)
            a2 = F.relu(F.conv2d(a1, w1, padding=1))
            out = F.conv2d(a2, w2, padding=1) + f0
            highest[2 * i] = max(highest[2 * i], float(a1.max()))
            highest[2 * i + 1] = max(highest[2 * i + 1], float(a2.max()))
    return highest


def _ops() -> Any:
    try:
        import openvino.opset13 as ops
    except ImportError:  # OpenVINO before 2025
        from openvino.runtime import opset13 as ops
    return ops


class _Builder:
    """Makes the graph's nodes; weights are shared by the unrolled recursions."""

    def __init__(self, model: ResJND):
        self.ops = _ops()
        w = {k: getattr(model, k).weight.detach().float().cpu().numpy() for k in ("input", "conv1", "conv2", "output")}
        self.w = {k: self.const(v) for k, v in w.items()}
        self.wq = {}
        for k in ("conv1", "conv2"):
            m = np.abs(w[k]).max(axis=(1, 2, 3)).reshape(-1, 1, 1, 1)
            m = np.maximum(m, np.float32(1e-12))  # an all-zero channel still has a scale
            self.wq[k] = self.fake_quantize(self.w[k], -m, m, 255)

    def const(self, a: Any) -> Any:
        return self.ops.constant(np.asarray(a, np.float32))

    def conv(self, a: Any, w: Any) -> Any:
        return self.ops.convolution(a, w, [1, 1], [1, 1], [1, 1], [1, 1])

    def fake_quantize(self, a: Any, lo: Any, hi: Any, levels: int) -> Any:
        lo, hi = self.const(lo), self.const(hi)
        return self.ops.fake_quantize(a, lo, hi, lo, hi, levels)

    def int8_conv(self, a: Any, name: str, highest: float, mode: str) -> Any:
        """conv(a) with int8 weights; ``a`` (>= 0) in 8 bits ("one"), or 16 bits in two
        passes ("two"); "fp32": no quantisation (for comparisons)."""
        highest = max(float(highest), 1e-6)
        if mode == "fp32":
            return self.conv(a, self.w[name])
        if mode == "one":
            return self.conv(self.fake_quantize(a, 0.0, highest, 256), self.wq[name])
        highest *= TWO_PASS_MARGIN
        hi = self.fake_quantize(a, 0.0, highest, 256)
        step = highest / 255 / 254  # the remainder lies within half a step of the high pass
        lo = self.fake_quantize(self.ops.subtract(a, hi), -128 * step, 127 * step, 256)
        return self.ops.add(self.conv(hi, self.wq[name]), self.conv(lo, self.wq[name]))


def build(model: ResJND, highest: np.ndarray, two_pass: int | None = None, fp32: int = 0) -> Any:
    """The int8 OpenVINO model of ``model`` (input 1 x 3 x H x W in [0, 1] -> CPL),
    with ``highest`` from :func:`activation_ranges`. ``two_pass``: how many of the
    last recursions take two passes (default :data:`TWO_PASS_RECURSIONS`); ``fp32``:
    how many of the last recursions stay fp32 instead (what CPUs without VNNI or AMX
    get: :func:`cpu_scheme`)."""
    import openvino as ov

    b, ops = _Builder(model), _ops()
    x = ops.parameter([1, 3, -1, -1], ov.Type.f32, name="image")
    f0 = ops.relu(b.conv(ops.relu(x), b.w["input"]))
    out = f0
    n = model.recursions
    two_from = n - min(TWO_PASS_RECURSIONS if two_pass is None else two_pass, n)
    fp32_from = n - min(fp32, n)
    for i in range(n):
        mode = "fp32" if i >= fp32_from else ("two" if i >= two_from else "one")
        a = b.int8_conv(ops.relu(out), "conv1", highest[2 * i], mode)
        out = ops.add(b.int8_conv(ops.relu(a), "conv2", highest[2 * i + 1], mode), f0)
    cpl = ops.add(b.conv(ops.relu(out), b.w["output"]), x)
    return ov.Model([cpl], [x], "resjnd-int8")


def quantize(model: ResJND) -> Any:
    """The int8 OpenVINO model of ``model``'s weights for this CPU (calibration: about
    10 s on two cores)."""
    return build(model, activation_ranges(model, calibration_images()), **cpu_scheme())
