"""A Shapes or Labels layer as plain regions of an image layer's pixel grid:
rectangles (y0, y1, x0, x1) or a boolean mask. Shared by the Fine-tune and
Annotate widgets, so that both read a drawing the same way."""

from __future__ import annotations

import numpy as np

from ..core.errors import ResJNDError
from ..core.training.pairs import Box


def annotation(layer, pristine) -> tuple[list[Box] | None, np.ndarray | None]:
    """Rectangles (Shapes) or a mask (Labels) in the pristine image's pixel grid."""
    from napari.layers import Labels, Shapes

    if layer is None:
        return None, None
    h, w = pristine.data.shape[:2]
    if isinstance(layer, Shapes):
        boxes = []
        for verts in layer.data:
            pix = np.array([pristine.world_to_data(layer.data_to_world(v)) for v in verts])[:, -2:]
            (y0, x0), (y1, x1) = np.floor(pix.min(0)), np.ceil(pix.max(0))
            boxes.append((int(y0), int(y1), int(x0), int(x1)))
        if not boxes:
            raise ResJNDError(f"Shapes layer {layer.name!r} has no rectangles: draw some, or pick none")
        return boxes, None
    if isinstance(layer, Labels):
        mask = np.asarray(layer.data) > 0
        if mask.shape != (h, w):
            raise ResJNDError(f"Labels layer {layer.name!r} is {mask.shape}, the pristine image is {(h, w)}")
        return None, mask
    raise ResJNDError(f"layer {layer.name!r} is a {type(layer).__name__}; annotate with Shapes or Labels")
