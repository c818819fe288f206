"""Writer: an image layer as a TIFF with its ResJND provenance, plus a JSON sidecar."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core.files import atomic_write_all, json_text


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_layer_with_provenance(path: str, data, meta: dict) -> list[str]:
    """napari single-layer writer: ``path`` (.tif/.tiff) gets the data as float32
    (or its own integer type) with the layer metadata in the TIFF description;
    ``<stem>.json`` beside it holds the same provenance plus scale and translate."""
    import tifffile

    p = Path(path)
    if p.suffix.lower() not in {".tif", ".tiff"}:
        p = p.with_suffix(".tif")
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    info = _jsonable(
        {
            "name": meta.get("name"),
            "scale": meta.get("scale"),
            "translate": meta.get("translate"),
            "rgb": meta.get("rgb"),
            "metadata": meta.get("metadata", {}),
        }
    )
    photometric = "rgb" if meta.get("rgb") else "minisblack"
    side = p.with_suffix(".json")
    text = json_text(info)
    atomic_write_all(  # the pair or neither: a failure leaves an earlier pair as it was
        [
            (
                p,
                lambda tmp: tifffile.imwrite(
                    tmp, arr, photometric=photometric, metadata={"napari_resjnd": json_text(info, None)}
                ),
            ),
            (side, lambda tmp: Path(tmp).write_text(text)),
        ]
    )
    return [str(p), str(side)]
