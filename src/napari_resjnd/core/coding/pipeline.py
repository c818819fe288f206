"""JND-guided coding of one image, as one pipeline that ``resjnd compress`` and the
JND-guided coding widget both run: maps (given or computed) -> the pictures an
encoder is given -> a rate-distortion sweep scored against the original -> BD-rates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ResJNDError
from ..events import Event, Status
from ..images import image_sha256
from ..maps import MapRequest, MapResult
from ..metrics import undefined
from . import bdrate, sweep
from .prefilter import DEFAULT_FILTER, DEFAULT_LAMBDA, DEFAULT_SIGMA, compute_maps, guided_pictures, map_of, uses_cpl


@dataclass(frozen=True)
class Prefilter:
    """How a map bounds the smoothing (:func:`.prefilter.jnd_smooth`)."""

    lam: float = DEFAULT_LAMBDA
    filter_name: str = DEFAULT_FILTER
    sigma: float = DEFAULT_SIGMA


@dataclass
class CodedImage:
    """One image's sweep: its points, their BD-rates against the plain codec, the pictures coded."""

    points: list[sweep.RDPoint]
    bd: list[dict]
    pictures: dict[str, np.ndarray] = field(default_factory=dict)
    #: Metrics left NaN on this image, each with why (a size below the metric's).
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scoring:
    """What a sweep can score here: the metrics whose libraries import, and whether
    BD-rates can be computed; what is left out, each with the pip command."""

    metrics: tuple[str, ...]
    bd_rate: bool
    left_out: dict[str, str] = field(default_factory=dict)

    def notice(self) -> str | None:
        """One line naming what is left out, or None."""
        if not self.left_out:
            return None
        return "left out: " + "; ".join(f"{k} ({why})" for k, why in self.left_out.items())


def scoring(wanted: Sequence[str] = sweep.METRICS) -> Scoring:
    """The metrics of ``wanted`` that run here and whether BD-rates can: a missing (or
    broken) optional library leaves its metric, or the BD-rates, out instead of refusing."""
    from ..errors import library_problem
    from ..metrics import usable

    kept, left = usable(wanted)
    left_out = {f"the {m} metric": why for m, why in left.items()}
    problem = library_problem("bjontegaard")
    if problem:
        left_out["BD-rates"] = f"{problem}: pip install bjontegaard (or pip install 'napari-resjnd[coding]')"
    return Scoring(tuple(kept), problem is None, left_out)


def check_image(image: np.ndarray, where: str) -> None:
    """One 2-D grey or colour image, or one line naming ``where``."""
    if (image.ndim == 3 and image.shape[2] not in (3, 4)) or image.ndim not in (2, 3):
        raise ResJNDError(f"{where}: expected one 2-D grey or colour image, got shape {image.shape}")


def iter_pictures(
    image: np.ndarray,
    names: Sequence[str],
    *,
    request: MapRequest | None = None,
    given: dict[str, MapResult] | None = None,
    prefilter: Prefilter = Prefilter(),
) -> Generator[Event, None, dict[str, np.ndarray]]:
    """The pictures an encoder is given for the pre-processings ``names`` (``none``: the
    original): maps from ``given`` where they serve, the others computed."""
    yield Status("computing JND maps…")
    maps = compute_maps(image, list(names), request, given)
    return guided_pictures(
        image, list(names), maps=maps, lam=prefilter.lam, filter_name=prefilter.filter_name, sigma=prefilter.sigma
    )


def iter_code_image(
    pictures: dict[str, np.ndarray],
    codecs: Sequence[str],
    qualities: dict[str, Sequence[int]],
    *,
    metrics: Sequence[str] = sweep.METRICS,
    keep_streams: bool = False,
    pool: Executor | None = None,
    workers: int = 0,
    method: str = "pchip",
    should_stop: Callable[[], bool] | None = None,
) -> Generator[Event, None, CodedImage]:
    """Every picture through every codec at its qualities, scored against ``pictures["none"]``
    (the original), and the BD-rate of every JND-guided curve against the plain one.
    Metrics or BD-rates whose library is missing are left out (one :class:`Status`
    says so); a metric undefined at the image's size is NaN with its reason."""
    scored = scoring(metrics)
    if scored.notice():
        yield Status(str(scored.notice()))
    original = pictures[sweep.PLAIN]
    why = undefined(scored.metrics, original.shape)
    points = yield from sweep.iter_sweep(
        original,
        pictures,
        codecs,
        qualities,
        metrics=scored.metrics,
        workers=workers,
        keep_streams=keep_streams,
        should_stop=should_stop,
        pool=pool,
    )
    bd = bdrate.bd_rows(points, scored.metrics, method) if scored.bd_rate else []
    for row in bd:
        row["note"] = why.get(row["metric"], row["note"])
    return CodedImage(points, bd, pictures, why)


def read_map_dir(
    folder: str | Path,
    name: str | Path,
    names: Sequence[str],
    image: np.ndarray,
    weights_sha256: str | None = None,
) -> tuple[dict[str, MapResult], list[str]]:
    """Maps written by ``resjnd predict --out FOLDER/<model>`` for one image (``name``:
    its path below the input root without the suffix, as ``predict --recursive`` keeps
    it), by source, each checked against the provenance its sidecar records: this
    image's sha256, the model (a learned model's weights, when ``weights_sha256`` is
    given), the size, finite values not below 0. A map that fails a check is left to
    be computed; returns the maps and one line per map left out, naming its file."""
    out: dict[str, MapResult] = {}
    lines: list[str] = []
    sha = image_sha256(image)
    for key in dict.fromkeys(map_of(n) for n in names):
        base = Path(folder) / key / name
        if not base.with_name(f"{base.name}_jnd.tif").is_file():
            continue
        wants_cpl = any(uses_cpl(n) and map_of(n) == key for n in names)
        try:
            out[key] = _checked_map(base, key, image, sha, weights_sha256, wants_cpl)
        except ResJNDError as e:
            lines.append(f"{e}; computed instead")
    return out, lines


def _checked_map(
    base: Path, key: str, image: np.ndarray, sha: str, weights_sha256: str | None, wants_cpl: bool
) -> MapResult:
    """One map (and CPL image) from ``base``_jnd.tif, checked, or a :class:`ResJNDError` naming the file at fault."""
    import tifffile

    from ..maps import source

    jnd_file, sidecar, cpl_file = (base.with_name(base.name + s) for s in ("_jnd.tif", ".json", "_cpl.png"))
    meta = _sidecar(sidecar, jnd_file)
    if "image_sha256" not in meta:
        raise ResJNDError(
            f"{sidecar}: records no image sha256 (an earlier version wrote it): {jnd_file.name} unchecked"
        )
    if meta["image_sha256"] != sha:
        raise ResJNDError(f"{jnd_file}: the map of another image (the sha256 in {sidecar.name} is not this image's)")
    learned, recorded = source(key).needs_weights, str(meta.get("weights"))
    other_weights = weights_sha256 is not None and meta.get("weights_sha256") != weights_sha256
    if (
        (recorded.startswith("classic:") == learned)
        or (not learned and recorded != f"classic:{key}")
        or (learned and other_weights)
    ):
        raise ResJNDError(f"{jnd_file}: made by {recorded}, not by {key} with these weights (see {sidecar.name})")
    quiet = logging.getLogger("tifffile")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its warnings about a damaged file: the one line below says it
    try:
        jnd = np.asarray(tifffile.imread(jnd_file), np.float32)
    except Exception as e:  # tifffile's many error types: a cut-short or foreign file
        raise ResJNDError(f"{jnd_file}: not a readable TIFF map ({type(e).__name__}: {e})") from None
    finally:
        quiet.setLevel(level)
    h, w = image.shape[:2]
    if jnd.shape != (h, w):
        raise ResJNDError(f"{jnd_file}: the map is {'x'.join(map(str, jnd.shape))}, the image {h}x{w}")
    if not np.isfinite(jnd).all() or (jnd < 0).any():
        raise ResJNDError(f"{jnd_file}: the map holds NaN, infinite or negative values")
    cpl = None
    if wants_cpl:
        if not cpl_file.is_file():
            raise ResJNDError(f"{jnd_file}: no CPL image ({cpl_file.name}) beside it")
        cpl = _checked_cpl(cpl_file, (h, w))
    return MapResult(jnd, cpl, {"file": str(jnd_file), **meta})


def _sidecar(sidecar: Path, jnd_file: Path) -> dict:
    """The provenance ``resjnd predict`` wrote beside a map, or an error naming the file."""
    import json

    if not sidecar.is_file():
        raise ResJNDError(f"{jnd_file}: no {sidecar.name} beside it, so its image cannot be checked")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResJNDError(f"{sidecar}: not a readable resjnd predict record ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise ResJNDError(f"{sidecar}: not a resjnd predict record (a JSON {type(meta).__name__}, not an object)")
    return meta


def _checked_cpl(cpl_file: Path, size: tuple[int, int]) -> np.ndarray:
    from ..images import read_image

    try:
        cpl = read_image(cpl_file)
    except (ResJNDError, OSError, ValueError) as e:
        raise ResJNDError(f"{cpl_file}: not a readable CPL image ({e})") from None
    if cpl.shape[:2] != size or cpl.ndim not in (2, 3):
        raise ResJNDError(
            f"{cpl_file}: the CPL image is {'x'.join(map(str, cpl.shape))}, the image {size[0]}x{size[1]}"
        )
    return cpl.astype(np.float32) / (65535 if cpl.dtype == np.uint16 else 255)
