"""A reference visibility predictor beside the JND models: ColorVideoVDP.

ColorVideoVDP (Mantiuk et al. 2024; PyPI ``cvvdp`` 0.5.7, MIT) predicts how a
distorted image differs from its reference for a given display, in JOD units
(just-objectionable differences: 10 means no visible difference, one unit less
means 75 % of observers prefer the reference), and a heatmap of where. It ships
its calibrated parameters and runs offline on the CPU.

Install it **without its declared dependencies**: they include torchvision, whose
PyPI wheels do not import beside a CPU build of torch, plus video, HDR and
machine-learning packages a still image never uses::

    pip install --no-deps cvvdp==0.5.7

Its still-image metric needs numpy, scipy, torch, imageio, tqdm and matplotlib,
which napari-resjnd (and scikit-image) already bring. Where torchvision, einops,
huggingface_hub or ffmpeg-python do not import, stand-ins take their place while
``pycvvdp`` is imported (:mod:`._cvvdp_standins`; the torchvision parts are
transcribed from torchvision, BSD-3-Clause, and give bit-identical results).

Our viewing conditions become a cvvdp display: the geometry (resolution,
diagonal, distance, or pixels per degree), the peak luminance, a 1000:1 panel in
250 lux (:mod:`.viewing`), sRGB. ``display=`` names one of cvvdp's own displays
(``standard_4k``: 30 inches, 3840 x 2160 at 0.75 m, 75.4 pixels per degree).

The heatmap is cvvdp's ``raw`` map, kept in float32 (cvvdp stores float16): per
pixel 1 - JOD(D) / 10 of the pooled, masked difference D; 0 is invisible, 0.1 about
one JOD; it can exceed 1.

Importing ``pycvvdp`` appends its folder to ``sys.path``, imports a few top-level
modules of its own (``interp``, ``third_party``, ``video_source``) and
``matplotlib.pyplot``; this module imports it only when a reference is asked for.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ResJNDError
from .viewing import AMBIENT_LUX, CONTRAST, REFLECTIVITY, ViewingConditions

#: The version the module is written and tested for.
CVVDP_VERSION = "0.5.7"
INSTALL = f"pip install --no-deps cvvdp=={CVVDP_VERSION}"
#: The names ``--reference`` takes.
REFERENCES = ("cvvdp",)

_LOCK = threading.RLock()
_STATE: dict[str, Any] = {"module": None, "error": None, "standins": []}
_METRICS: dict[tuple, Any] = {}


@dataclass(frozen=True)
class Reference:
    """A reference prediction: quality in JOD (10: no visible difference) and where."""

    jod: float
    #: H x W float32: cvvdp's raw heatmap (0: invisible; 0.1 about one JOD).
    heatmap: np.ndarray
    #: The display cvvdp was given, for the record.
    display: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "predictor": f"ColorVideoVDP {CVVDP_VERSION} (cvvdp)",
            "jod": round(self.jod, 6),
            "heatmap_mean": round(float(self.heatmap.mean()), 6),
            "heatmap_max": round(float(self.heatmap.max()), 6),
            "display": self.display,
        }


def _load() -> Any:
    with _LOCK:
        if _STATE["module"] is not None:
            return _STATE["module"]
        if _STATE["error"] is not None:
            raise ResJNDError(_STATE["error"])
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from importlib.util import find_spec

        if find_spec("pycvvdp") is None:
            _STATE["error"] = f"the reference predictor ColorVideoVDP is not installed: {INSTALL}"
            raise ResJNDError(_STATE["error"])
        from ._cvvdp_standins import scoped_standins

        try:
            with scoped_standins() as used:
                import pycvvdp
            _STATE["standins"] = used
        except Exception as e:  # a broken install: one line with its reason
            _STATE["error"] = f"ColorVideoVDP does not import ({type(e).__name__}: {e}); reinstall it: {INSTALL}"
            raise ResJNDError(_STATE["error"]) from None
        _STATE["module"] = pycvvdp
        return pycvvdp


def require() -> None:
    """Nothing when ColorVideoVDP imports; else a ResJNDError with the pip command."""
    _load()


def available() -> bool:
    try:
        _load()
        return True
    except ResJNDError:
        return False


def standins() -> list[str]:
    """The modules that stand-ins replaced when cvvdp was imported."""
    _load()
    return list(_STATE["standins"])


def _spec(viewing: ViewingConditions | None, display: str | None) -> tuple:
    if display is not None:
        return ("named", display)
    if viewing is None:
        raise ResJNDError("the reference predictor needs viewing conditions or a display name")
    return (
        "viewing",
        viewing.resolution,
        viewing.fixed_ppd,
        viewing.distance_cm,
        viewing.diagonal_in,
        viewing.peak_luminance,
    )


def display_record(viewing: ViewingConditions | None, display: str | None) -> dict:
    if display is not None:
        pc = _load()
        models = pc.utils.json2dict(pc.utils.config_files.find("display_models.json", []))
        return {"cvvdp_display": display, **{k: v for k, v in models.get(display, {}).items() if k != "source"}}
    assert viewing is not None
    return {
        **viewing.as_dict(),
        "contrast": CONTRAST,
        "ambient_lux": AMBIENT_LUX,
        "k_refl": REFLECTIVITY,
        "colorspace": "sRGB",
    }


def _metric(viewing: ViewingConditions | None, display: str | None) -> Any:
    pc = _load()
    key = _spec(viewing, display)
    with _LOCK:
        if key in _METRICS:
            return _METRICS[key]
        import torch

        class _Cvvdp(pc.cvvdp):  # type: ignore[name-defined]
            """Keeps the float32 heatmap cvvdp rounds to float16 in its stats."""

            def process_block_of_frames(self, R: Any, vid_sz: Any, temp_ch: Any, lpyr: Any, is_image: Any) -> Any:
                q, hm = super().process_block_of_frames(R, vid_sz, temp_ch, lpyr, is_image)
                self.heatmap32 = None if hm is None else hm.detach().to(torch.float32).cpu()
                return q, hm

        kw: dict[str, Any] = {"heatmap": "raw", "device": torch.device("cpu"), "quiet": True}
        if display is not None:
            known = display_names()
            if display not in known:
                raise ResJNDError(f"unknown cvvdp display {display!r}; known: {', '.join(known)}")
            metric = _Cvvdp(display_name=display, **kw)
        else:
            assert viewing is not None
            photo = pc.vvdp_display_photo_eotf(
                viewing.peak_luminance,
                contrast=CONTRAST,
                source_colorspace="sRGB",
                E_ambient=AMBIENT_LUX,
                k_refl=REFLECTIVITY,
                name="napari-resjnd",
            )
            if viewing.fixed_ppd is not None:
                geometry = pc.vvdp_display_geometry(viewing.resolution, ppd=viewing.fixed_ppd)
            else:
                geometry = pc.vvdp_display_geometry(
                    viewing.resolution, distance_m=viewing.distance_cm / 100, diagonal_size_inches=viewing.diagonal_in
                )
            metric = _Cvvdp(display_name="napari-resjnd", display_photometry=photo, display_geometry=geometry, **kw)
        if len(_METRICS) > 8:
            _METRICS.clear()
        _METRICS[key] = metric
        return metric


def display_names() -> list[str]:
    pc = _load()
    return list(pc.utils.json2dict(pc.utils.config_files.find("display_models.json", [])))


def _as_rgb8(image: np.ndarray, what: str) -> np.ndarray:
    from ..images import rgb255

    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ResJNDError(f"the {what} image must be H x W grey or H x W x 3 RGB, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.rint(rgb255(a[..., :3])), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a[..., :3])


def evaluate(
    pristine: np.ndarray,
    distorted: np.ndarray,
    viewing: ViewingConditions | None = None,
    *,
    display: str | None = None,
) -> Reference:
    """ColorVideoVDP's JOD and heatmap of ``distorted`` against ``pristine`` (8-bit sRGB)."""
    ref, dist = _as_rgb8(pristine, "pristine"), _as_rgb8(distorted, "distorted")
    if ref.shape != dist.shape:
        raise ResJNDError(f"the distorted image is {dist.shape[:2]}, the pristine {ref.shape[:2]}")
    metric = _metric(viewing, display)
    import torch

    with _LOCK, torch.no_grad():
        q, _stats = metric.predict(dist, ref, dim_order="HWC")  # cvvdp's order: (test, reference)
        hm = metric.heatmap32.reshape(ref.shape[0], ref.shape[1]).numpy().astype(np.float32, copy=True)
    return Reference(float(q), hm, display_record(viewing, display))
