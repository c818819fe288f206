"""The files ``resjnd predict`` writes for one image, as one set: all are written
beside their places first and renamed into place only when every one is whole (the
JSON sidecar last), so a job that fails half-way leaves an earlier run's set as it was.

Per image: ``<stem>_jnd.tif`` (float32, absolute grey levels, provenance in the
TIFF description), and for one 2-D image ``<stem>_jnd.png`` (8-bit) and
``<stem>_cpl.png``, for a stack ``<stem>_cpl.tif`` (float32); ``<stem>.json`` (the
provenance) is written last, so its presence marks a complete set.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ResJNDError
from .files import atomic_write_all, disk_full, json_text, json_writer

if TYPE_CHECKING:
    from .inference import Prediction


def output_paths(out_dir: Path, stem: str, planes_2d: bool, cpl: bool = True) -> list[Path]:
    """The files of one image, in the order they are written (the sidecar last); a
    classic model's map has no CPL image."""
    names = ["_jnd.tif", "_jnd.png", "_cpl.png"] if planes_2d else ["_jnd.tif", "_cpl.tif"]
    names = names if cpl else [n for n in names if "_cpl" not in n]
    return [out_dir / f"{stem}{n}" for n in names] + [out_dir / f"{stem}.json"]


def _png_exif(orientation: int | None) -> Any:
    """EXIF with the source's orientation tag, so a viewer that honours it turns the
    maps like the photo (napari, like ``resjnd``, shows the stored pixel order)."""
    if orientation in (None, 1):
        return None
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = int(orientation)
    return exif


def write_outputs(
    pred: Prediction,
    out_dir: Path,
    stem: str,
    jnd_scale: str = "absolute",
    extra: dict | None = None,
    orientation: int = 1,
) -> list[Path]:
    """Write the files of one prediction (see the module docstring); returns their paths."""
    import tifffile
    from PIL import Image

    from .jnd import normalise_max, to_uint8_absolute

    if not np.isfinite(pred.jnd).all():
        raise ResJNDError("the JND map holds NaN or infinite values; nothing written")
    out_dir = Path(out_dir)
    meta = {**pred.metadata, **(extra or {}), "jnd_png_scale": jnd_scale}
    if orientation not in (None, 1):
        meta["exif_orientation"] = int(orientation)
    planes_2d = pred.jnd.ndim == 2
    cpl = pred.cpl
    paths = output_paths(out_dir, stem, planes_2d, cpl=cpl is not None)
    meta["files"] = [p.name for p in paths[:-1]]  # what --skip-existing checks for a complete set
    exif = _png_exif(orientation)

    def png(array):
        return lambda tmp: Image.fromarray(array).save(tmp, format="PNG", **({"exif": exif} if exif else {}))

    writers: list[Callable[[str], object]] = [
        lambda tmp: tifffile.imwrite(tmp, pred.jnd.astype(np.float32), metadata={"resjnd": json_text(meta, None)})
    ]
    if planes_2d:
        j8 = normalise_max(pred.jnd) if jnd_scale == "max" else to_uint8_absolute(pred.jnd)
        writers.append(png(j8))
    if cpl is not None and planes_2d:
        writers.append(png(np.clip(np.rint(cpl * 255), 0, 255).astype(np.uint8)))
    elif cpl is not None:
        writers.append(lambda tmp: tifffile.imwrite(tmp, cpl.astype(np.float32)))
    writers.append(json_writer(meta))
    try:
        return atomic_write_all(list(zip(paths, writers)))
    except OSError as e:
        if e.errno != errno.ENOSPC and disk_full(out_dir):
            raise OSError(errno.ENOSPC, f"no space left in {out_dir} ({e})") from None
        raise
