"""Any image a researcher has -> float32 RGB planes in [0, 1], with checks.

Accepted: H x W grey, H x W x 3 RGB, H x W x 4 RGBA (alpha ignored), with any
leading axes (stacks, time series). uint8 is divided by 255 and uint16 by 65535;
float images are taken as already in [0, 1]; bool as 0 / 1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageLayout:
    """How an input array maps to RGB planes: leading shape and channel count."""

    leading: tuple[int, ...]
    height: int
    width: int
    channels: int  # 1 (grey), 3 (RGB) or 4 (RGBA)

    @property
    def rgb(self) -> bool:
        return self.channels > 1

    @property
    def n_planes(self) -> int:
        return int(np.prod(self.leading, dtype=np.int64))


def layout_of(image: np.ndarray, rgb: bool | None = None) -> ImageLayout:
    """Work out the layout; ``rgb=None`` guesses from a last axis of 3 or 4."""
    shape = tuple(image.shape)
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    if rgb:
        if len(shape) < 3 or shape[-1] not in (3, 4):
            raise ValueError(f"an RGB image needs a last axis of 3 or 4, got shape {shape}")
        *lead, h, w, c = shape
    else:
        if len(shape) < 2:
            raise ValueError(f"an image needs at least 2 axes (H x W), got shape {shape}")
        *lead, h, w = shape
        c = 1
    if h < 1 or w < 1:
        raise ValueError(f"empty image of shape {shape}")
    return ImageLayout(tuple(lead), h, w, c)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale to float32 in [0, 1] by dtype; NaN or inf raise ``ValueError``."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535)
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        f = a.astype(np.float32, copy=False)
        if not np.isfinite(f).all():
            bad = int(np.size(f) - np.count_nonzero(np.isfinite(f)))
            raise ValueError(f"the image holds {bad} NaN or infinite values; ResJND needs finite pixels")
        if f.size and (f.min() < -0.01 or f.max() > 1.01):
            warnings.warn(
                f"float image values span [{f.min():.3g}, {f.max():.3g}]; ResJND expects [0, 1] "
                "(divide 8-bit data by 255)",
                stacklevel=3,
            )
        return f
    raise ValueError(
        f"unsupported pixel type {a.dtype}; use uint8, uint16, or float in [0, 1]"
    )


def plane_rgb(unit: np.ndarray, layout: ImageLayout, index: int) -> np.ndarray:
    """Plane ``index`` (over the flattened leading axes) as H x W x 3 float32."""
    flat = unit.reshape((layout.n_planes, layout.height, layout.width, -1))
    p = flat[index]
    if layout.channels == 1:
        return np.repeat(p, 3, axis=-1)
    return np.ascontiguousarray(p[..., :3])


def read_image(path: str | Path) -> np.ndarray:
    """Read a file as an array: TIFF through tifffile, the rest through Pillow."""
    path = Path(path)
    if path.suffix.lower() in {".tif", ".tiff"}:
        import tifffile

        return tifffile.imread(path)
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(im, dtype=np.uint16)
        if im.mode not in ("L", "RGB", "RGBA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        return np.asarray(im)


def rgb255(image: np.ndarray) -> np.ndarray:
    """One 2-D image as H x W x 3 float64 in [0, 255], exact for uint8 input."""
    a = np.asarray(image)
    layout = layout_of(a)
    if layout.n_planes != 1:
        raise ValueError(f"expected one 2-D image, got shape {a.shape}")
    if a.dtype == np.uint8:
        scaled = a.astype(np.float64)
    elif a.dtype == np.uint16:
        scaled = a.astype(np.float64) * (255 / 65535)
    else:
        scaled = to_unit_float(a).astype(np.float64) * 255
    return plane_rgb(scaled, layout, 0)
