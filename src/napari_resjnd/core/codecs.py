"""Image codecs behind one small interface, for rate-distortion sweeps.

Every codec takes an H x W x 3 uint8 RGB image and a quality (higher is better
for all of them here), returns the bytes it produced, and decodes them back to
H x W x 3 uint8. The bit rate is always counted from those bytes
(:func:`bits_per_pixel`), container headers included, as a file on disk would
hold them. JPEG, WebP and AVIF come with Pillow; HEIC (HEVC intra through
libheif and x265, the closest thing to BPG) and JPEG XL (libjxl through
imagecodecs) need the ``coding`` extra.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from .errors import ResJNDError

EXTRA = "napari-resjnd[coding]"


@dataclass(frozen=True)
class Codec:
    """One codec: what it is called, how its quality runs, and how to run it."""

    #: The name the CLI and the widget use.
    name: str
    #: What a table or plot shows.
    title: str
    #: File extension of its streams (``--save-streams``).
    ext: str
    #: The pip package that provides it, for the one-line error when it is missing.
    package: str
    #: Lowest and highest quality accepted (inclusive).
    quality_range: tuple[int, int]
    #: The qualities a sweep uses when none are given.
    default_qualities: tuple[int, ...]
    #: image (H x W x 3 uint8), quality -> bytes.
    _encode: Callable[[np.ndarray, int], bytes]
    #: bytes -> H x W x 3 uint8.
    _decode: Callable[[bytes], np.ndarray]
    #: The library and its version, as the results record it.
    _version: Callable[[], str]
    #: True where a higher quality number means a better image (all codecs here).
    higher_is_better: bool = True

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """The stream for ``image`` (H x W x 3 uint8) at ``quality``."""
        lo, hi = self.quality_range
        if not lo <= quality <= hi:
            raise ResJNDError(f"{self.name} quality {quality}: must lie between {lo} and {hi}")
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise ResJNDError(f"{self.name}: expected H x W x 3 uint8 RGB, got {a.dtype} {a.shape}")
        return self._encode(np.ascontiguousarray(a), int(quality))

    def decode(self, stream: bytes) -> np.ndarray:
        """The image a stream holds, H x W x 3 uint8."""
        return np.ascontiguousarray(self._decode(stream)[..., :3], dtype=np.uint8)

    def version(self) -> str:
        """The library that codes, and its version."""
        return self._version()


def bits_per_pixel(stream: bytes, shape: tuple[int, ...]) -> float:
    """8 x len(stream) / (H x W): the rate of a stream for an image of ``shape``."""
    return 8.0 * len(stream) / (int(shape[0]) * int(shape[1]))


# ---- Pillow codecs ------------------------------------------------------
def _pillow_encode(fmt: str, **options: object) -> Callable[[np.ndarray, int], bytes]:
    def encode(image: np.ndarray, quality: int) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format=fmt, quality=quality, **options)
        return buf.getvalue()

    return encode


def _pillow_decode(stream: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(stream)) as im:
        return np.asarray(im.convert("RGB"))


def _pillow_version(feature: str, label: str) -> Callable[[], str]:
    def version() -> str:
        import PIL
        from PIL import features

        lib = features.version(feature)
        turbo = " (libjpeg-turbo)" if feature == "jpg" and features.check_feature("libjpeg_turbo") else ""
        return f"Pillow {PIL.__version__}, {label} {lib}{turbo}"

    return version


def _pillow_feature(feature: str, name: str) -> None:
    from PIL import features

    if not features.check(feature):
        raise ResJNDError(
            f"codec {name}: this Pillow was built without {feature.upper()}; pip install -U pillow "
            f"(its wheels include it)"
        )


# ---- HEIC (pillow-heif) ------------------------------------------------
def _heif() -> object:
    try:
        import pillow_heif
    except ImportError:
        raise ResJNDError(f"codec heic needs pillow-heif: pip install pillow-heif (or pip install '{EXTRA}')") from None
    return pillow_heif


def _heic_encode(image: np.ndarray, quality: int) -> bytes:
    heif = _heif()
    buf = io.BytesIO()
    heif.from_bytes("RGB", (image.shape[1], image.shape[0]), image.tobytes()).save(buf, quality=quality)  # type: ignore[attr-defined]
    return buf.getvalue()


def _heic_decode(stream: bytes) -> np.ndarray:
    heif = _heif()
    return np.asarray(heif.open_heif(io.BytesIO(stream), convert_hdr_to_8bit=True))  # type: ignore[attr-defined]


def _heic_version() -> str:
    heif = _heif()
    info = heif.libheif_info()  # type: ignore[attr-defined]
    return f"pillow-heif {heif.__version__}, libheif {info['libheif']}, {info['HEIF']}"  # type: ignore[attr-defined]


# ---- JPEG XL (imagecodecs) ----------------------------------------------
def _imagecodecs() -> object:
    try:
        import imagecodecs
    except ImportError:
        raise ResJNDError(f"codec jxl needs imagecodecs: pip install imagecodecs (or pip install '{EXTRA}')") from None
    if not imagecodecs.JPEGXL.available:
        raise ResJNDError("codec jxl: this imagecodecs was built without JPEG XL; pip install -U imagecodecs")
    return imagecodecs


def _jxl_encode(image: np.ndarray, quality: int) -> bytes:
    # ``level`` is libjxl's quality (JxlEncoderDistanceFromQuality), effort left at libjxl's default (7)
    return bytes(_imagecodecs().jpegxl_encode(image, level=quality))  # type: ignore[attr-defined]


def _jxl_decode(stream: bytes) -> np.ndarray:
    return np.asarray(_imagecodecs().jpegxl_decode(stream))  # type: ignore[attr-defined]


def _jxl_version() -> str:
    ic = _imagecodecs()
    return f"imagecodecs {ic.__version__}, {ic.jpegxl_version()}"  # type: ignore[attr-defined]


_SWEEP = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)

CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec(
            "jpeg",
            "JPEG",
            "jpg",
            "pillow",
            (1, 100),
            _SWEEP,
            _pillow_encode("JPEG"),  # Pillow's defaults: 4:2:0 chroma, standard tables, baseline
            _pillow_decode,
            _pillow_version("jpg", "libjpeg"),
        ),
        Codec(
            "webp",
            "WebP",
            "webp",
            "pillow",
            (1, 100),
            _SWEEP,
            _pillow_encode("WEBP", method=4),
            _pillow_decode,
            _pillow_version("webp", "libwebp"),
        ),
        Codec(
            "avif",
            "AVIF",
            "avif",
            "pillow",
            (1, 100),
            _SWEEP,
            _pillow_encode("AVIF"),  # Pillow's defaults: speed 6, 4:2:0
            _pillow_decode,
            _pillow_version("avif", "libavif"),
        ),
        Codec(
            "heic",
            "HEIC (HEVC intra)",
            "heic",
            "pillow-heif",
            (1, 100),
            _SWEEP,
            _heic_encode,
            _heic_decode,
            _heic_version,
        ),
        Codec("jxl", "JPEG XL", "jxl", "imagecodecs", (1, 100), _SWEEP, _jxl_encode, _jxl_decode, _jxl_version),
    )
}
_PILLOW_FEATURE = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}


def codec(name: str) -> Codec:
    """The codec called ``name``, its library checked (one line naming the pip command if missing)."""
    if name not in CODECS:
        raise ResJNDError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    check_available(name)
    return CODECS[name]


@cache
def _available(name: str) -> None:
    if name in _PILLOW_FEATURE:
        _pillow_feature(_PILLOW_FEATURE[name], name)
    elif name == "heic":
        _heif()
    elif name == "jxl":
        _imagecodecs()


def check_available(name: str) -> None:
    """Raise :class:`ResJNDError` (one line, with the pip command) when ``name`` cannot run here."""
    _available(name)


def available_codecs() -> list[str]:
    """The codecs that run here."""
    out = []
    for name in CODECS:
        try:
            check_available(name)
        except ResJNDError:
            continue
        out.append(name)
    return out


def codec_names(text: str) -> list[str]:
    """Comma-separated codec names (``all``: every codec), checked."""
    names: list[str] = []
    for n in (t.strip().lower() for t in text.split(",")):
        for m in CODECS if n == "all" else [n]:
            if m and m not in names:
                names.append(m)
    if not names:
        raise ResJNDError(f"no codec given; known: {', '.join(CODECS)}")
    for n in names:
        codec(n)
    return names


def parse_qualities(text: str) -> tuple[int, ...]:
    """``"10:90:10"`` (start:stop:step, stop included) or ``"20,40,60"``."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] <= 0):
                raise ValueError
            start, stop, step = (*parts, 10)[:3]
            values = tuple(range(start, stop + 1, step))
        else:
            values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ResJNDError(
            f"--quality {text!r}: give START:STOP:STEP (e.g. 10:90:10) or a list (e.g. 20,40,60)"
        ) from None
    if len(set(values)) < 2:
        raise ResJNDError(f"--quality {text!r}: a rate-distortion curve needs at least 2 distinct qualities")
    return tuple(sorted(set(values)))
