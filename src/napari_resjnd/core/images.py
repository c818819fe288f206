"""Any image a researcher has -> float32 RGB planes in [0, 1], with checks.

An image is H x W grey, H x W x 3 RGB or H x W x 4 RGBA (alpha ignored). Leading
axes (stacks, time series) are planes only when the caller says so (``rgb``
given) or the file does (TIFF pages). uint8 is divided by 255 and uint16 by
65535; float images are taken as already in [0, 1]; bool as 0 / 1. Anything else
is refused with its shape in the message: no guess that could be silently wrong.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ResJNDError

#: The file types read as images (folders are searched for these).
IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
#: BT.601 luma weights: how every JND model and metric here turns RGB into Y.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


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


#: Pages of a TIFF without axis names that are narrower than this are taken for
#: what they almost always are, an H x W x C array (C not 1, 3, 4) that tifffile
#: stored as H pages of W x C, and refused.
MIN_SIDE = 8
#: Largest plane, in pixels: twice Pillow's decompression-bomb warning level.
MAX_PIXELS = 2 * 89_478_485


def layout_of(image: np.ndarray, rgb: bool | None = None) -> ImageLayout:
    """Work out the layout. ``rgb=None`` accepts only one image (H x W, or
    H x W x 3 or 4); for stacks say what the axes are: ``rgb=False`` (... x H x W
    grey planes) or ``rgb=True`` (... x H x W x 3 or 4)."""
    shape = tuple(image.shape)
    if rgb is None:
        if len(shape) == 3 and shape[-1] in (3, 4):
            rgb = True
        elif len(shape) == 2:
            rgb = False
        else:
            raise ResJNDError(
                f"shape {shape} is not an image: give H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA); "
                "for a stack of planes say rgb=False (... x H x W) or rgb=True (... x H x W x 3 or 4)"
            )
    if rgb:
        if len(shape) < 3 or shape[-1] not in (3, 4):
            raise ResJNDError(f"an RGB image needs a last axis of 3 or 4, got shape {shape}")
        *lead, h, w, c = shape
    else:
        if len(shape) < 2:
            raise ResJNDError(f"an image needs at least 2 axes (H x W), got shape {shape}")
        *lead, h, w = shape
        c = 1
    if h < 1 or w < 1:
        raise ResJNDError(f"empty image of shape {shape}")
    return ImageLayout(tuple(lead), h, w, c)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Scale to float32 in [0, 1] by dtype; NaN or inf raise ``ValueError``."""
    a = native_order(np.asarray(image))
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
            raise ResJNDError(f"the image holds {bad} NaN or infinite values; ResJND needs finite pixels")
        lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 1.0)
        if lo < -0.5 or hi > 1.5:  # another scale (0-255, 0-65535): the maps would be meaningless
            raise ResJNDError(
                f"float pixels span [{lo:.4g}, {hi:.4g}]; ResJND takes float images in [0, 1] "
                "(divide 8-bit data by 255, 16-bit data by 65535)"
            )
        if lo < -0.01 or hi > 1.01:
            warnings.warn(
                f"float image values span [{lo:.3g}, {hi:.3g}]; ResJND expects [0, 1]",
                stacklevel=3,
            )
        return f
    raise ResJNDError(f"unsupported pixel type {a.dtype}; use uint8, uint16, or float in [0, 1]")


def native_order(a: np.ndarray) -> np.ndarray:
    """``a`` in the machine's byte order: a big-endian array (``>u2``, from a file or
    another tool) has the same values but does not compare equal to ``np.uint16``."""
    if a.dtype.byteorder in ("=", "|") or a.dtype.byteorder == np.dtype(a.dtype.type).byteorder:
        return a
    return a.astype(a.dtype.newbyteorder("="))


def plane_rgb(unit: np.ndarray, layout: ImageLayout, index: int) -> np.ndarray:
    """Plane ``index`` (over the flattened leading axes) as H x W x 3 float32."""
    flat = unit.reshape((layout.n_planes, layout.height, layout.width, -1))
    p = flat[index]
    if layout.channels == 1:
        return np.repeat(p, 3, axis=-1)
    return np.ascontiguousarray(p[..., :3])


@dataclass(frozen=True)
class ImageFile:
    """An image read from a file, with what the file says about its axes."""

    data: np.ndarray
    rgb: bool  # the last axis is colour (3 or 4 samples)
    orientation: int = 1  # EXIF orientation tag (1: none); pixels stay as stored


def read_image(path: str | Path) -> np.ndarray:
    """Read a file as an array (see :func:`load_image`)."""
    return load_image(path).data


def load_image(path: str | Path) -> ImageFile:
    """Read an image file, refusing what cannot be read as one image or a stack
    of them; every error is a ``ValueError`` naming the file.

    TIFF (tifffile): the samples axis goes last (planar RGB is recognised by its
    photometric tag; 16-bit stays 16-bit); more pages make a stack. Other formats
    (Pillow): one frame; grey, RGB or RGBA, 16-bit grey kept. Pixels stay in the
    order they are stored, as napari's reader shows them: the EXIF orientation is
    returned, not applied. Planes over :data:`MAX_PIXELS` are refused from the
    header, before any pixel is decoded.
    """
    path = Path(path)
    if not path.is_file():
        if path.is_symlink() and not path.exists():
            raise ResJNDError(f"{path}: a broken symbolic link or a symlink loop")
        raise ResJNDError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            return _load_tiff(path)
        return _load_pillow(path)
    except ValueError as e:
        msg = str(e)
        raise ResJNDError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except MemoryError:
        raise ResJNDError(f"{path}: not enough memory to read it") from None
    except Exception as e:  # damaged files raise every kind of error in the decoders
        raise ResJNDError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding the pixels;
    the same limits as :func:`load_image` (a decompression bomb is refused)."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            import tifffile

            with tifffile.TiffFile(path) as tf:
                page = tf.pages.first
                h, w = int(page.imagelength), int(page.imagewidth)
        else:
            from PIL import Image

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    h, w = im.height, im.width
        _check_pixels(h, w)
    except ValueError as e:
        raise ResJNDError(f"{path}: {e}") from None
    except Exception as e:  # damaged files raise every kind of error in the decoders
        raise ResJNDError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    return h, w


def _check_pixels(h: int, w: int, planes: int = 1) -> None:
    if h * w > MAX_PIXELS:
        raise ResJNDError(
            f"{w} x {h} = {h * w:,} pixels per plane is more than the limit of {MAX_PIXELS:,} "
            "(a decompression bomb, or an image to split first)"
        )
    if h * w * planes > 8 * MAX_PIXELS:
        raise ResJNDError(
            f"{planes} planes of {w} x {h} pixels is more than the limit of {8 * MAX_PIXELS:,} pixels in one file"
        )


def _load_tiff(path: Path) -> ImageFile:
    import tifffile

    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        axes, shape = series.axes, tuple(series.shape)
        page = tf.pages.first
        photometric = int(page.photometric) if page.photometric is not None else None
        if "Y" not in axes or "X" not in axes:
            raise ResJNDError(f"no image axes in the TIFF (axes {axes!r}, shape {shape})")
        h, w = shape[axes.index("Y")], shape[axes.index("X")]
        other = [n for a, n in zip(axes, shape) if a not in "YXS"]
        _check_pixels(h, w, int(np.prod(other, dtype=np.int64)))
        data = series.asarray()
    if "S" in axes:  # samples (colour) last, planar or not
        data = np.moveaxis(data, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    samples = data.shape[-1] if axes.endswith("S") else 1
    rgb = photometric in (2, 6)  # RGB, or YCbCr (JPEG-compressed: tifffile decodes it to RGB)
    if "C" in axes and data.shape[axes.index("C")] != 1:
        raise ResJNDError(
            f"{data.shape[axes.index('C')]} channels (axes {series.axes!r}, shape {shape}); "
            "ResJND takes grey, RGB or RGBA images"
        )
    data = data.reshape([n for a, n in zip(axes, data.shape) if not (a == "C" or (a == "S" and n == 1))])
    if "Q" in axes and min(h, w) < MIN_SIDE:
        raise ResJNDError(
            f"{shape[0]} pages of {w} x {h} pixels (shape {shape}): this looks like an H x W x {w} "
            "array, and ResJND takes grey (H x W), RGB or RGBA (H x W x 3 or 4) images"
        )
    if samples > 1 and not (rgb and samples in (3, 4)):
        raise ResJNDError(
            f"{samples} samples per pixel that are not RGB or RGBA (photometric {photometric}, "
            f"shape {shape}); ResJND takes grey, RGB or RGBA images"
        )
    rgb = rgb and samples > 1
    layout_of(data, rgb)  # plane size and shape checks
    return ImageFile(data, rgb)


def _load_pillow(path: Path) -> ImageFile:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as e:
            raise ResJNDError(f"refused as a decompression bomb ({e})") from None
    with im:
        w, h = im.size
        _check_pixels(h, w)
        frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            raise ResJNDError(
                f"{frames} frames; ResJND reads one image per file (save the frames as TIFF pages to predict a stack)"
            )
        orientation = int(im.getexif().get(0x0112, 1) or 1)
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L"):
            data = np.asarray(im, dtype=np.uint16)
        elif mode == "I":  # 16-bit PNG grey as 32-bit integers
            data = np.asarray(im)
            if data.min() < 0 or data.max() > 65535:
                raise ResJNDError(
                    f"32-bit integer pixels (range {data.min()} to {data.max()}); ResJND takes 8- or 16-bit images"
                )
            data = data.astype(np.uint16)
        elif mode == "F":
            raise ResJNDError("32-bit float pixels; save float images as TIFF, in [0, 1]")
        else:
            if mode not in ("L", "RGB", "RGBA"):
                keep_alpha = "A" in im.getbands() or "transparency" in im.info
                im = im.convert(  # type: ignore[assignment]
                    "RGBA" if keep_alpha and mode not in ("LA", "La") else "L" if mode in ("1", "LA", "La") else "RGB"
                )
            data = np.asarray(im)
    rgb = data.ndim == 3
    layout_of(data, rgb)
    return ImageFile(data, rgb, orientation)


def rgb255(image: np.ndarray) -> np.ndarray:
    """One 2-D image as H x W x 3 float64 in [0, 255], exact for uint8 input."""
    a = native_order(np.asarray(image))
    layout = layout_of(a)
    if layout.n_planes != 1:
        raise ResJNDError(f"expected one 2-D image, got shape {a.shape}")
    if a.dtype == np.uint8:
        scaled = a.astype(np.float64)
    elif a.dtype == np.uint16:
        scaled = a.astype(np.float64) * (255 / 65535)
    else:
        scaled = to_unit_float(a).astype(np.float64) * 255
    return plane_rgb(scaled, layout, 0)


def luminance(image: np.ndarray) -> np.ndarray:
    """Y in [0, 255] (BT.601: 0.299 R + 0.587 G + 0.114 B) from a grey or RGB image
    in any form ``predict`` accepts; a grey uint8 image is returned as it is."""
    a = np.asarray(image)
    if a.ndim == 2 and a.dtype == np.uint8:
        return a.astype(np.float64)
    return to_y(rgb255(a))


def to_y(rgb255_image: np.ndarray) -> np.ndarray:
    """Y in [0, 255] (BT.601 weights) from H x W x 3 RGB already in [0, 255]."""
    return np.asarray(rgb255_image, np.float64) @ np.array(LUMA_WEIGHTS)


def image_sha256(image: np.ndarray) -> str:
    """sha256 of an image's pixels, dtype and shape (the same pixels in PNG or TIFF match)."""
    import hashlib

    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
