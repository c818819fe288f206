"""One registry of JND map sources: every model a job can name, what kind of
threshold its map holds, and how to compute it.

Every job (prediction, evaluation, coding, visibility, the widgets, the CLI) asks
this module which names exist (:func:`parse_names`, :data:`ALL`) and for the maps
(:func:`compute`): adding a learned model is one :class:`MapSource` entry.

A map's **domain** says what its values mean, which decides how a job may use it:

- ``pixel``: a luminance threshold per pixel, in grey levels (Chou & Li, NAMM, ...);
- ``dct``: a threshold per 8 x 8 DCT coefficient, coefficient (i, j)'s threshold
  laid out at pixel (i, j) of its block (Zhang 2005, Jia 2006);
- ``cpl``: the residual of a critically perceptually lossless image, |CPL - I|
  per pixel: one change that stays unseen (ResJND, KLT-JND);
- ``control``: no image content (``uniform``: one everywhere).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ResJNDError
from .images import layout_of, luminance, plane_rgb, to_unit_float
from .zoo import ALIASES
from .zoo import MODELS as ZOO

if TYPE_CHECKING:
    from .inference import Prediction

#: What each domain's values mean.
DOMAINS = {
    "pixel": "luminance threshold per pixel (grey levels)",
    "dct": "threshold per 8 x 8 DCT coefficient, laid out on the coefficients' pixels (grey levels)",
    "cpl": "residual of a critically perceptually lossless image, |CPL - I| per pixel (grey levels)",
    "control": "a control without image content",
}


@dataclass(frozen=True)
class MapRequest:
    """How a map is to be computed: the learned models' weights and device, a stop flag."""

    weights: str | None = None
    device: str = "auto"
    precision: str = "auto"
    should_stop: Callable[[], bool] | None = None
    #: A model already loaded for ``weights`` (saves loading it again).
    model: Any = None
    #: Further options of :func:`~.inference.predict` (``tile``, ``rgb``).
    options: dict = field(default_factory=dict)

    def load_model(self) -> Any:
        if self.model is not None:
            return self.model
        from .weights import DEFAULT_WEIGHTS, load_model

        return load_model(self.weights or DEFAULT_WEIGHTS)


@dataclass(frozen=True)
class MapResult:
    """A JND map (H x W float32, grey levels) and, for CPL models, the CPL image (H x W x 3 in [0, 1])."""

    jnd: np.ndarray
    cpl: np.ndarray | None = None
    #: Provenance of the learned models' maps (weights, precision, ...).
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MapSource:
    """One JND map source: its name, what it is, and how to compute its map."""

    name: str
    title: str
    #: A key of :data:`DOMAINS`.
    domain: str
    #: (image, request) -> MapResult.
    compute: Callable[[np.ndarray, MapRequest], MapResult]
    #: "learned", "classic" or "control".
    kind: str = "classic"
    #: DCT sources whose base thresholds come from a CSF at a fixed pixel size: pixels per
    #: degree -> the 8 x 8 factor that moves the map's thresholds to that viewing condition
    #: (the map times it; exact for unmasked coefficients, see :func:`csf_rescale`).
    viewing_scale: Callable[[float], np.ndarray] | None = None

    @property
    def needs_weights(self) -> bool:
        return self.kind == "learned"

    @property
    def gives_cpl(self) -> bool:
        """Whether :func:`compute` also returns the CPL image (learned CPL models)."""
        return self.kind == "learned" and self.domain == "cpl"


def _resjnd(image: np.ndarray, request: MapRequest) -> MapResult:
    from .inference import predict

    pred = predict(
        request.load_model(),
        image,
        device=request.device,
        precision=request.precision,
        should_stop=request.should_stop,
        **request.options,
    )
    return MapResult(pred.jnd, pred.cpl, pred.metadata)


def _classic(name: str) -> Callable[[np.ndarray, MapRequest], MapResult]:
    return lambda image, _request: MapResult(np.asarray(ZOO[name].compute(image), np.float32))


def _uniform(image: np.ndarray, _request: MapRequest) -> MapResult:
    return MapResult(np.ones(luminance(image).shape, np.float32))


_ZOO_DOMAIN = {"pixel": "pixel", "DCT": "dct", "KLT": "cpl"}


def csf_rescale(name: str) -> Callable[[float], np.ndarray] | None:
    """Zhang 2005 and Jia 2006 compute their base thresholds from a CSF at the authors'
    pixel size (0.0298 and 0.0342 degrees: 34 and 29 pixels per degree); at another
    ppd the same coefficient has another spatial frequency. The factor base(1 / ppd) /
    base(authors') moves a map to that ppd: exact where the contrast masking leaves
    a coefficient at its base threshold, an approximation where masking raises it
    (the elevation max(1, |C / base|^0.36) depends on the base weakly)."""
    from .zoo import dct

    bases: dict[str, tuple[Callable[[float], np.ndarray], float]] = {
        "zhang2005": (dct.zhang2005_thresholds, dct.ZHANG_PIXEL_DEG),
        "jia2006": (lambda w: dct.jia2006_thresholds(0.0, w), dct.JIA_PIXEL_DEG),
    }
    if name not in bases:
        return None
    base, own = bases[name]
    return lambda ppd: base(1.0 / ppd) / base(own)


#: The default learned model.
DEFAULT_MODEL = "resjnd"
#: Every source, by name: the learned models first, then the classic ones, then the controls.
SOURCES: dict[str, MapSource] = {
    s.name: s
    for s in (
        MapSource(DEFAULT_MODEL, "ResJND (Liu et al.)", "cpl", _resjnd, kind="learned"),
        *(
            MapSource(n, m.title, _ZOO_DOMAIN[m.domain], _classic(n), viewing_scale=csf_rescale(n))
            for n, m in ZOO.items()
        ),
        MapSource("uniform", "uniform (control: 1 everywhere)", "control", _uniform, kind="control"),
    )
}
#: What ``all`` means everywhere: every learned and classic source (never the controls).
ALL = tuple(n for n, s in SOURCES.items() if s.kind != "control")
#: The classic models' names, in the order pickers list them.
MODELS = tuple(n for n, s in SOURCES.items() if s.kind == "classic")
#: Their titles, by name.
TITLES = {n: s.title for n, s in SOURCES.items()}


def source(name: str) -> MapSource:
    """The source called ``name`` (or one of the classic models' :data:`ALIASES`)."""
    key = ALIASES.get(name, name)
    if key not in SOURCES:
        known = ", ".join(SOURCES)
        raise ResJNDError(f"unknown JND model {name!r}; known: {known} (aliases: {', '.join(ALIASES)})")
    return SOURCES[key]


def is_source(name: str) -> bool:
    return ALIASES.get(name, name) in SOURCES


def parse_names(text: str | Sequence[str], *, extra: Sequence[str] = (), controls: bool = True) -> list[str]:
    """Comma-separated model names as a list, in order, without repeats: ``all`` is
    :data:`ALL`; aliases become their names; ``extra`` are further names the caller
    takes (``shuffled``, say); ``controls=False`` refuses ``uniform``. One line
    naming the first unknown name otherwise."""
    parts = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    names: list[str] = []
    for part in filter(None, parts):
        for n in ALL if part == "all" else (part,):
            n = ALIASES.get(n, n)
            if n not in names:
                names.append(n)
    allowed = [n for n, s in SOURCES.items() if controls or s.kind != "control"]
    unknown = [n for n in names if n not in allowed and n not in extra]
    if unknown or not names:
        known = ", ".join(["all", *allowed, *extra])
        raise ResJNDError(f"unknown JND model {unknown[0] if unknown else '(none)'!r}; known: {known}")
    return names


def needs_weights(names: Sequence[str]) -> bool:
    return any(is_source(n) and source(n).needs_weights for n in names)


def compute(names: Sequence[str], image: np.ndarray, request: MapRequest | None = None) -> dict[str, MapResult]:
    """The maps of the sources ``names`` for one 2-D image, by name."""
    request = request or MapRequest()
    out: dict[str, MapResult] = {}
    for name in names:
        s = source(name)
        if s.needs_weights and request.model is None:
            request = replace(request, model=request.load_model())
        out[name] = s.compute(image, request)
    return out


def jnd_map(name: str, image: np.ndarray, *, weights: str | None = None, **predict_kw: Any) -> np.ndarray:
    """Any source's JND map by name: ``resjnd`` (ResJND with ``weights``, default the
    authors'; ``predict_kw`` go to :func:`~.inference.predict`: ``device``, ``precision``,
    ``should_stop``, ``tile``, ...), a classic model of :mod:`.zoo` or ``uniform``.
    H x W float32, grey levels."""
    fields = {k: predict_kw.pop(k) for k in ("device", "precision", "should_stop") if k in predict_kw}
    return source(name).compute(image, MapRequest(weights=weights, options=predict_kw, **fields)).jnd


def predict_classic(name: str, image: np.ndarray, rgb: bool | None = None) -> Prediction:
    """A weight-free source's JND as a :class:`~.inference.Prediction` (no CPL or residual),
    plane by plane for stacks; offline."""
    from .inference import Prediction

    s = source(name)
    if s.needs_weights:
        raise ResJNDError(f"{name} needs weights: use predict() with its model")
    t0 = time.perf_counter()
    a = np.asarray(image)
    layout = layout_of(a, rgb)
    unit = to_unit_float(a)
    planes = [s.compute(plane_rgb(unit, layout, i), MapRequest()).jnd for i in range(layout.n_planes)]
    jnd = np.stack(planes).reshape((*layout.leading, layout.height, layout.width))
    meta = {
        "weights": f"classic:{s.name}",
        "model": s.title,
        "weights_sha256": None,
        "device": "cpu",
        "precision": "fp64",
        "tile": None,
        "seconds": round(time.perf_counter() - t0, 3),
        "input_shape": list(a.shape),
        "jnd_units": "grey levels (0-255), luminance Y",
    }
    return Prediction(cpl=None, residual=None, jnd=jnd, metadata=meta)
