"""Probe: PyTorch eager int8 (x86 backend) for ResJND on this CPU, scheme by
scheme, against the fp32 forward: speed and JND error. Not a product path: no
scheme here met the bound (mean |dJND| <= 0.25 grey levels) when it was written.

    python benchmarks/int8_probe.py [--weights resjnd-cplset]

Every scheme keeps the input and output convolutions in fp32 and quantises the
shared recursion's two convolutions (per-channel weights, static activation
ranges from three downscaled scikit-image photos); the photos tested are others.
Schemes:
- ``shared``: one activation scale for all 25 recursions (conv1, conv2 shared);
- ``per-step``: the recursion unrolled, a scale per step;
- ``per-step, fp32 sum``: as ``per-step``, the residual sum kept in fp32.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn
from torch.ao.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub, convert, get_default_qconfig, prepare

import napari_resjnd as rj


class Int8Recursion(nn.Module):
    def __init__(self, model: rj.ResJND, per_step: bool, fp32_sum: bool):
        super().__init__()
        n = model.recursions if per_step else 1
        self.model, self.per_step, self.fp32_sum = model, per_step, fp32_sum
        self.conv1 = nn.ModuleList(copy.deepcopy(model.conv1) for _ in range(n))
        self.conv2 = nn.ModuleList(copy.deepcopy(model.conv2) for _ in range(n))
        self.relu1 = nn.ModuleList(nn.ReLU() for _ in range(n))
        self.relu2 = nn.ModuleList(nn.ReLU() for _ in range(n))
        self.add = nn.ModuleList(FloatFunctional() for _ in range(n))
        self.quant = nn.ModuleList(QuantStub() for _ in range(n + 1))
        self.dequant = nn.ModuleList(DeQuantStub() for _ in range(n + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        f0 = F.relu(m.input(x))
        if self.fp32_sum:
            out = f0
            for i in range(m.recursions):
                k = i if self.per_step else 0
                q = self.quant[k](F.relu(out))
                out = self.dequant[k](self.conv2[k](self.relu2[k](self.conv1[k](q)))) + f0
        else:
            f0q = out = self.quant[-1](f0)
            for i in range(m.recursions):
                k = i if self.per_step else 0
                out = self.add[k].add(self.conv2[k](self.relu2[k](self.conv1[k](self.relu1[k](out)))), f0q)
            out = self.dequant[-1](out)
        return m.output(F.relu(out)) + x


def forward(net: nn.Module, img: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        return net(t.contiguous(memory_format=torch.channels_last))[0].permute(1, 2, 0).numpy()


def jnd(cpl: np.ndarray, img: np.ndarray) -> np.ndarray:
    r = (cpl - img.astype(np.float32) / 255) * 255
    return np.sqrt((r**2).mean(-1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="resjnd-cplset")
    args = ap.parse_args()
    torch.backends.quantized.engine = "x86"
    model = rj.load_model(args.weights).eval()
    calibration = [data.astronaut()[::4, ::4], data.chelsea()[::3, ::3], data.rocket()[::4, ::4]]
    tests = [
        data.coffee()[100:260, 200:360],
        data.hubble_deep_field()[:160, :160],
        data.immunohistochemistry()[:160, :160],
    ]
    print("| scheme | image | mean abs dJND | p99.9 | speed-up over fp32 |\n| --- | --- | ---: | ---: | ---: |")
    for name, per_step, fp32_sum in [
        ("shared", False, False),
        ("per-step", True, False),
        ("per-step, fp32 sum", True, True),
    ]:
        q = Int8Recursion(model, per_step, fp32_sum).eval()
        q.qconfig = get_default_qconfig("x86")
        q.model.qconfig = None
        prepare(q, inplace=True)
        for img in calibration:
            forward(q, img)
        convert(q, inplace=True)
        for k, img in enumerate(tests):
            t0 = time.perf_counter()
            exact = jnd(forward(model, img), img)
            t1 = time.perf_counter()
            got = jnd(forward(q, img), img)
            t2 = time.perf_counter()
            d = np.abs(got - exact)
            print(f"| {name} | {k} | {d.mean():.3f} | {np.percentile(d, 99.9):.2f} | {(t1 - t0) / (t2 - t1):.2f}x |")


if __name__ == "__main__":
    main()
