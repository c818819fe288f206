"""The network reproduces the authors' code, in-place ReLU included, and its receptive field."""

import numpy as np
import torch
from conftest import make_tiny
from torch import nn

from napari_resjnd.core.model import RECEPTIVE_RADIUS, ResJND


class AuthorsCPLNet(nn.Module):
    """The authors' forward pass written as they wrote it (nn.ReLU(inplace=True))."""

    def __init__(self, net: ResJND):
        super().__init__()
        self.net, self.relu = net, nn.ReLU(inplace=True)

    def forward(self, x):
        n = self.net
        residual = x
        inputs = n.input(self.relu(x))
        out = inputs
        for _ in range(n.recursions):
            out = n.conv2(self.relu(n.conv1(self.relu(out))))
            out = torch.add(out, inputs)
        out = n.output(self.relu(out))
        return torch.add(out, residual)


def test_matches_authors_inplace_relu_semantics():
    net = make_tiny(channels=8, recursions=5)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        ours = net(x.clone())
        theirs = AuthorsCPLNet(net)(x.clone())
        # What the code seems to intend (raw feature map added back) differs:
        f = net.input(x)
        out = f
        for _ in range(net.recursions):
            out = net.conv2(torch.relu(net.conv1(torch.relu(out)))) + f
        intended = net.output(torch.relu(out)) + x
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert (ours - intended).abs().max() > 1e-4


def test_receptive_radius_is_exact():
    net = make_tiny(channels=4, recursions=3)
    r = net.receptive_radius
    assert r == 8 and RECEPTIVE_RADIUS == 52
    x = torch.rand(1, 3, 41, 41) * 0.5 + 0.25
    y = x.clone()
    y[..., 20, 20] += 0.3
    with torch.no_grad():
        d = (net(x) - net(y)).abs().sum(1)[0].numpy()
    ys, xs = np.nonzero(d > 0)
    assert max(abs(ys - 20).max(), abs(xs - 20).max()) == r


def test_state_dict_keys_match_the_authors_checkpoint():
    sd = ResJND().state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "input.weight": (128, 3, 3, 3),
        "conv1.weight": (128, 128, 3, 3),
        "conv2.weight": (128, 128, 3, 3),
        "output.weight": (3, 128, 3, 3),
    }
