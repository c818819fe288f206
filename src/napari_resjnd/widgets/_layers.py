"""Prediction -> napari layers: names, colormaps, contrast limits, geometry, provenance.

Kept apart from the widget so the look of the results has one source of truth
(the launcher, the fine-tune widget and tests use it too).
"""

from __future__ import annotations

import numpy as np

from ..core.inference import Prediction

OUTPUTS = ("CPL", "residual", "JND")
#: Colormaps: diverging for the signed residual, perceptual for the JND.
RESIDUAL_COLORMAP = "PiYG"
JND_COLORMAP = "inferno"


def output_name(source_name: str, output: str) -> str:
    return f"{source_name} {output}"


def geometry(source, plane_index: tuple[int, ...] | None) -> dict:
    """Scale and translate for a result of ``source``; ``plane_index`` places a
    one-plane result at that position of the stack."""
    scale = list(np.asarray(source.scale, float))
    translate = list(np.asarray(source.translate, float))
    if plane_index is not None:
        for ax, i in enumerate(plane_index):
            translate[ax] += i * scale[ax]
    return {"scale": scale, "translate": translate}


def layer_data(pred: Prediction, source, rgb: bool, plane_index: tuple[int, ...] | None) -> dict:
    """``{output: (data, kwargs)}`` for the three outputs of ``pred``.

    A one-plane result of a stack keeps its leading axes as length-1 axes so it
    sits at that plane. The residual layer of an RGB image is the signed mean of
    the R, G and B residuals, so that one diverging colormap can show it without
    adding a channel axis to the viewer (the CPL layer minus the input gives each
    channel). The JND's upper contrast limit is its 99.5th percentile: the maximum
    is often a few outlier pixels that would leave the rest of the map dark.
    """
    cpl, residual, jnd = pred.cpl, pred.residual, pred.jnd
    if plane_index is not None:
        lead = (1,) * len(plane_index)
        jnd = jnd.reshape(lead + jnd.shape)
    j_max = float(np.percentile(jnd, 99.5)) or float(jnd.max()) or 1.0
    base_meta = {**pred.metadata, "source_layer": source.name}
    jnd_layer = (
        jnd,
        {
            "rgb": False,
            "colormap": JND_COLORMAP,
            "contrast_limits": (0.0, j_max),
            **geometry(source, plane_index),
            "metadata": {"resjnd": {**base_meta, "output": "jnd", "units": "grey levels (absolute)"}},
        },
    )
    if cpl is None:  # a classic model: a JND map only, named after the model
        return {f"JND {pred.metadata['weights'].split(':')[-1]}": jnd_layer}
    assert residual is not None, "a ResJND prediction has a residual with its CPL"
    if plane_index is not None:
        cpl = cpl.reshape(lead + cpl.shape)
        residual = residual.reshape(lead + residual.shape)
    if rgb:
        residual = residual.mean(axis=-1)
    r_lim = float(np.percentile(np.abs(residual), 99.5)) or float(np.abs(residual).max()) or 1.0
    return {
        "CPL": (
            cpl,
            {
                "rgb": rgb,
                "contrast_limits": (0.0, 1.0),
                **geometry(source, plane_index),
                "metadata": {"resjnd": {**base_meta, "output": "cpl", "units": "input [0, 1]"}},
            },
        ),
        "residual": (
            residual,
            {
                "rgb": False,
                "colormap": RESIDUAL_COLORMAP,
                "contrast_limits": (-r_lim, r_lim),
                **geometry(source, plane_index),
                "metadata": {
                    "resjnd": {
                        **base_meta,
                        "output": "residual",
                        "units": "grey levels, CPL - input" + (", mean over R, G, B" if rgb else ""),
                    }
                },
            },
        ),
        "JND": jnd_layer,
    }


def add_or_update(viewer, source, pred: Prediction, outputs, rgb: bool, plane_index=None) -> list:
    """Add the chosen outputs as layers, or update the layers a previous run made."""
    return [
        put_layer(viewer, source, output, data, kw)
        for output, (data, kw) in layer_data(pred, source, rgb, plane_index).items()
        if output.split(" ")[0] in outputs
    ]


def put_layer(viewer, source, output: str, data, kw: dict):
    """Update the layer ``"<source> <output>"`` in place, or add it (replacing a
    layer of that name whose kind or dimensionality no longer fits)."""
    name = output_name(source.name, output)
    existing = viewer.layers[name] if name in viewer.layers else None
    if existing is not None:
        fits = getattr(existing, "rgb", None) == kw["rgb"] and existing.ndim == data.ndim - int(kw["rgb"])
        if fits:
            existing.data = data
            existing.scale, existing.translate = kw["scale"], kw["translate"]
            existing.metadata = kw["metadata"]
            existing.contrast_limits = kw["contrast_limits"]
            return existing
        viewer.layers.remove(existing)
    kwargs = {k: v for k, v in kw.items() if not (k == "colormap" and v is None)}
    return viewer.add_image(data, name=name, **kwargs)
