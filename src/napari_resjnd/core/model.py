"""The ResJND CPL network, exact to the outputs the authors published.

The authors' ``CPL_Net`` applies ``nn.ReLU(inplace=True)`` to the first feature
map in the first recursion. Because ``out`` and ``inputs`` are then the same
tensor, the in-place ReLU also rectifies ``inputs``, so every later recursion
adds back ``relu(input_conv(x))``, not the raw feature map the code seems to
intend. Their published JND maps were made that way, so this module does the
same thing explicitly (no in-place tricks):

    f0  = relu(conv_in(x))
    out = f0
    25x: out = conv2(relu(conv1(relu(out)))) + f0      (conv1, conv2 shared)
    cpl = conv_out(relu(out)) + x

The ReLU the authors apply to ``x`` itself is a no-op for inputs in [0, 1] but
is kept so that out-of-range inputs behave like theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Feature channels and recursions of the published network.
CHANNELS = 128
RECURSIONS = 25


def receptive_radius(recursions: int = RECURSIONS) -> int:
    """Pixels each way that one output pixel depends on: one per 3x3 conv."""
    return 2 * recursions + 2


#: Receptive radius of the published network (52 px each way).
RECEPTIVE_RADIUS = receptive_radius(RECURSIONS)


@dataclass(frozen=True)
class Provenance:
    """Where a network's weights came from, attached to it as ``model.provenance``
    (as timm attaches a pretrained config to its models). Every prediction's
    metadata and every checkpoint saved from the model carry it on."""

    #: Registry name, or the file's path for a weights file; None: not loaded from anything.
    weights: str | None = None
    #: The file the weights were read from.
    path: str | None = None
    #: sha256 of that file (registry entries: checked against the pinned hash).
    sha256: str | None = None
    #: For a fine-tuned checkpoint: sha256 of the weights its training started from.
    base_sha256: str | None = None
    #: For a fine-tuned checkpoint: its training summary (settings, data, best epoch).
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def origin_sha256(self) -> str | None:
        """The weights this line of checkpoints descends from: the base's, else these."""
        return self.base_sha256 or self.sha256

    @property
    def name(self) -> str:
        return self.weights or "unnamed"


class ResJND(nn.Module):
    """Image (N x 3 x H x W, [0, 1]) -> its critical perceptual lossless (CPL) image.

    ``channels`` and ``recursions`` exist so tests can use a tiny network; the
    published weights need the defaults. State-dict keys match the authors'
    checkpoint (``input``, ``conv1``, ``conv2``, ``output``; no biases).
    """

    def __init__(self, channels: int = CHANNELS, recursions: int = RECURSIONS):
        super().__init__()
        self.channels = int(channels)
        self.recursions = int(recursions)
        self.input = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.output = nn.Conv2d(channels, 3, 3, padding=1, bias=False)
        #: Where the weights came from; set by the loader.
        self.provenance = Provenance()
        self.reset_parameters()

    @property
    def receptive_radius(self) -> int:
        return receptive_radius(self.recursions)

    @property
    def architecture(self) -> dict:
        return {"name": "ResJND", "channels": self.channels, "recursions": self.recursions}

    def reset_parameters(self) -> None:
        """The authors' initialisation: N(0, sqrt(2 / (k * k * out_channels)))."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / n) ** 0.5)

    def forward(self, x: torch.Tensor, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Plain forward pass. ``on_step(i, recursions)`` runs after each recursion
        (progress and cancellation hooks; it may raise to abort).

        With reduced-precision weights (a bf16 or fp16 copy), the network runs in
        that precision but the global residual is added in the input's precision:
        a bf16 copy of the input would round it by up to a grey level.
        """
        w = self.input.weight
        f0 = F.relu(self.input(F.relu(x.to(w.dtype))))
        out = f0
        for i in range(self.recursions):
            out = self.conv2(F.relu(self.conv1(F.relu(out)))) + f0
            if on_step is not None:
                on_step(i + 1, self.recursions)
        return self.output(F.relu(out)).to(x.dtype) + x
