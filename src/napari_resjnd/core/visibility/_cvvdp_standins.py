"""Stand-ins for the modules ColorVideoVDP (``cvvdp``) imports but its still-image
metric does not need, put into ``sys.modules`` only while ``import pycvvdp`` runs
(:func:`scoped_standins`) and only for a module that does not import for real.

cvvdp imports ``torchvision`` for ``transforms.GaussianBlur`` (the metric's
phase-uncertainty blur) and ``ops.MLP`` (its ML variants), and ``einops``,
``huggingface_hub`` and ``ffmpeg`` (ML variants and video files) at module level.
PyPI's torchvision wheels are built against CUDA torch and do not import beside a
CPU build of torch. The GaussianBlur and MLP here are transcribed line by line
from torchvision 0.28.0 (``transforms/transforms.py``, ``functional.py``,
``_functional_tensor.py``, ``ops/misc.py``): same kernel, same reflect padding,
same grouped convolution, same draw from torch's random generator; cvvdp's JOD
and heatmaps with them are bit-identical to cvvdp with torchvision on the paths
tested. The other stand-ins raise when used, so nothing can reach the network.

The transcribed code is from torchvision, distributed under this licence:

    BSD 3-Clause License

    Copyright (c) Soumith Chintala 2016,
    All rights reserved.

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this
      list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above copyright notice,
      this list of conditions and the following disclaimer in the documentation
      and/or other materials provided with the distribution.

    * Neither the name of the copyright holder nor the names of its
      contributors may be used to endorse or promote products derived from
      this software without specific prior written permission.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
    AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
    IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
    DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
    FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
    DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
    SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
    CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
    OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
    OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

from __future__ import annotations

import contextlib
import numbers
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any


def _kernel1d(kernel_size: int, sigma: float, dtype: Any, device: Any) -> Any:
    import torch

    ksize_half = (kernel_size - 1) * 0.5
    x = torch.linspace(-ksize_half, ksize_half, steps=kernel_size, dtype=dtype, device=device)
    pdf = torch.exp(-0.5 * (x / sigma).pow(2))
    return pdf / pdf.sum()


def _kernel2d(kernel_size: Sequence[int], sigma: Sequence[float], dtype: Any, device: Any) -> Any:
    import torch

    kx = _kernel1d(kernel_size[0], sigma[0], dtype, device)
    ky = _kernel1d(kernel_size[1], sigma[1], dtype, device)
    return torch.mm(ky[:, None], kx[None, :])


def _tensor_gaussian_blur(img: Any, kernel_size: list[int], sigma: list[float]) -> Any:
    """torchvision.transforms._functional_tensor.gaussian_blur."""
    import torch
    from torch.nn.functional import conv2d
    from torch.nn.functional import pad as torch_pad

    if not isinstance(img, torch.Tensor):
        raise TypeError(f"img should be Tensor. Got {type(img)}")
    dtype = img.dtype if torch.is_floating_point(img) else torch.float32
    kernel = _kernel2d(kernel_size, sigma, dtype=dtype, device=img.device)
    kernel = kernel.expand(img.shape[-3], 1, kernel.shape[0], kernel.shape[1])
    need_squeeze = img.ndim < 4
    if need_squeeze:
        img = img.unsqueeze(dim=0)
    out_dtype = img.dtype
    need_cast = out_dtype != kernel.dtype
    if need_cast:
        img = img.to(kernel.dtype)
    padding = [kernel_size[0] // 2, kernel_size[0] // 2, kernel_size[1] // 2, kernel_size[1] // 2]
    img = torch_pad(img, padding, mode="reflect")
    img = conv2d(img, kernel, groups=img.shape[-3])
    if need_squeeze:
        img = img.squeeze(dim=0)
    if need_cast:
        if out_dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            img = torch.round(img)
        img = img.to(out_dtype)
    return img


def gaussian_blur(img: Any, kernel_size: Any, sigma: Any = None) -> Any:
    """torchvision.transforms.functional.gaussian_blur (tensors)."""
    if isinstance(kernel_size, int):
        kernel_size = [kernel_size, kernel_size]
    if len(kernel_size) != 2 or any(k % 2 == 0 or k < 0 for k in kernel_size):
        raise ValueError(f"kernel_size should have odd and positive integers. Got {kernel_size}")
    if sigma is None:
        sigma = [k * 0.15 + 0.35 for k in kernel_size]
    if isinstance(sigma, (int, float)):
        sigma = [float(sigma), float(sigma)]
    if isinstance(sigma, (list, tuple)) and len(sigma) == 1:
        sigma = [sigma[0], sigma[0]]
    if len(sigma) != 2 or any(s <= 0.0 for s in sigma):
        raise ValueError(f"sigma should have two positive values. Got {sigma}")
    return _tensor_gaussian_blur(img, list(kernel_size), list(sigma))


def _setup_size(size: Any) -> tuple[int, int]:
    if isinstance(size, numbers.Number):
        return int(size), int(size)  # type: ignore[call-overload]
    if isinstance(size, Sequence) and len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError("Kernel size should be a tuple/list of two integers")
    return size[0], size[1]


def make_gaussian_blur() -> type:
    """torchvision.transforms.GaussianBlur (tensor inputs)."""
    import torch

    class GaussianBlur(torch.nn.Module):
        def __init__(self, kernel_size: Any, sigma: Any = (0.1, 2.0)) -> None:
            super().__init__()
            self.kernel_size = _setup_size(kernel_size)
            for ks in self.kernel_size:
                if ks <= 0 or ks % 2 == 0:
                    raise ValueError("Kernel size value should be an odd and positive number.")
            if isinstance(sigma, numbers.Number):
                if sigma <= 0:  # type: ignore[operator]
                    raise ValueError("If sigma is a single number, it must be positive.")
                sigma = (sigma, sigma)
            elif isinstance(sigma, Sequence) and len(sigma) == 2:
                if not 0.0 < sigma[0] <= sigma[1]:
                    raise ValueError("sigma values should be positive and of the form (min, max).")
            else:
                raise ValueError("sigma should be a single number or a list/tuple with length 2.")
            self.sigma = sigma

        @staticmethod
        def get_params(sigma_min: float, sigma_max: float) -> float:
            return torch.empty(1).uniform_(sigma_min, sigma_max).item()  # the random draw torchvision makes

        def forward(self, img: Any) -> Any:
            sigma = self.get_params(self.sigma[0], self.sigma[1])
            return gaussian_blur(img, self.kernel_size, [sigma, sigma])

    GaussianBlur.__module__ = "torchvision.transforms"
    return GaussianBlur


def make_mlp() -> type:
    """torchvision.ops.MLP (cvvdp's ML variants; same state-dict keys)."""
    import torch

    class MLP(torch.nn.Sequential):
        def __init__(
            self,
            in_channels: int,
            hidden_channels: list[int],
            norm_layer: Any = None,
            activation_layer: Any = torch.nn.ReLU,
            inplace: bool | None = None,
            bias: bool = True,
            dropout: float = 0.0,
        ) -> None:
            params = {} if inplace is None else {"inplace": inplace}
            layers: list[Any] = []
            in_dim = in_channels
            for hidden_dim in hidden_channels[:-1]:
                layers.append(torch.nn.Linear(in_dim, hidden_dim, bias=bias))
                if norm_layer is not None:
                    layers.append(norm_layer(hidden_dim))
                layers.append(activation_layer(**params))
                layers.append(torch.nn.Dropout(dropout, **params))
                in_dim = hidden_dim
            layers.append(torch.nn.Linear(in_dim, hidden_channels[-1], bias=bias))
            layers.append(torch.nn.Dropout(dropout, **params))
            super().__init__(*layers)

    MLP.__module__ = "torchvision.ops.misc"
    return MLP


class _Unavailable:
    """A name that raises when used: cvvdp's ML variants and video files are not supported."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __call__(self, *a: Any, **k: Any) -> Any:
        raise RuntimeError(f"{self._what} is not available: only cvvdp's still-image metric is supported here")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable(f"{self._what}.{name}")


def _package(name: str) -> Any:
    m: Any = types.ModuleType(name)
    m.__path__ = []
    m.__resjnd_standin__ = True
    return m


def _torchvision() -> dict[str, Any]:
    tv, tr, ops = _package("torchvision"), _package("torchvision.transforms"), _package("torchvision.ops")
    fn: Any = types.ModuleType("torchvision.transforms.functional")
    misc: Any = types.ModuleType("torchvision.ops.misc")
    tr.GaussianBlur, fn.gaussian_blur, tr.functional = make_gaussian_blur(), gaussian_blur, fn
    misc.MLP = ops.MLP = make_mlp()
    ops.misc, tv.transforms, tv.ops = misc, tr, ops
    return {
        "torchvision": tv,
        "torchvision.transforms": tr,
        "torchvision.transforms.functional": fn,
        "torchvision.ops": ops,
        "torchvision.ops.misc": misc,
    }


def _einops() -> dict[str, Any]:
    e, layers, lt = _package("einops"), _package("einops.layers"), types.ModuleType("einops.layers.torch")
    e.rearrange, e.repeat = _Unavailable("einops.rearrange"), _Unavailable("einops.repeat")
    lt.Rearrange = _Unavailable("einops.layers.torch.Rearrange")  # type: ignore[attr-defined]
    e.layers, layers.torch = layers, lt
    return {"einops": e, "einops.layers": layers, "einops.layers.torch": lt}


def _huggingface_hub() -> dict[str, Any]:
    h = _package("huggingface_hub")
    h.hf_hub_download = _Unavailable("huggingface_hub.hf_hub_download (offline)")
    return {"huggingface_hub": h}


def _ffmpeg() -> dict[str, Any]:
    f = _package("ffmpeg")
    f.__getattr__ = lambda name: _Unavailable(f"ffmpeg.{name}")
    return {"ffmpeg": f}


def _imports(statement: str) -> Callable[[], None]:
    return lambda: exec(statement, {})


#: (module, the import cvvdp makes, its stand-ins).
STANDINS: list[tuple[str, Callable[[], None], Callable[[], dict[str, Any]]]] = [
    (
        "torchvision",
        _imports("from torchvision.transforms import GaussianBlur\nfrom torchvision.ops import MLP"),
        _torchvision,
    ),
    ("einops", _imports("from einops import rearrange, repeat\nfrom einops.layers.torch import Rearrange"), _einops),
    ("huggingface_hub", _imports("from huggingface_hub import hf_hub_download"), _huggingface_hub),
    ("ffmpeg", _imports("import ffmpeg"), _ffmpeg),
]


def _imports_for_real(check: Callable[[], None]) -> bool:
    """Whether the real import works; a failed one's partial modules are removed."""
    before = set(sys.modules)
    try:
        check()
        return True
    except Exception:  # ImportError, or the RuntimeError a torchvision built for another torch raises
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        return False


@contextlib.contextmanager
def scoped_standins() -> Iterator[list[str]]:
    """Stand-ins for the modules that do not import, for the duration of the block;
    yields their names. Afterwards ``sys.modules`` is as before for those names."""
    inserted: dict[str, Any] = {}
    used: list[str] = []
    for name, check, make in STANDINS:
        present = sys.modules.get(name)
        if present is not None and not getattr(present, "__resjnd_standin__", False):
            continue
        if _imports_for_real(check):
            continue
        for key, module in make().items():
            inserted[key] = sys.modules.get(key)
            sys.modules[key] = module
        used.append(name)
    try:
        yield used
    finally:
        for key, previous in inserted.items():
            if previous is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = previous
