"""JND-guided coding of one image, as one pipeline that ``resjnd compress`` and the
JND-guided coding widget both run: maps (given or computed) -> the pictures an
encoder is given -> a rate-distortion sweep scored against the original -> BD-rates.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ResJNDError
from ..events import Event, Status
from ..maps import MapRequest, MapResult
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
    (the original), and the BD-rate of every JND-guided curve against the plain one."""
    points = yield from sweep.iter_sweep(
        pictures[sweep.PLAIN],
        pictures,
        codecs,
        qualities,
        metrics=metrics,
        workers=workers,
        keep_streams=keep_streams,
        should_stop=should_stop,
        pool=pool,
    )
    return CodedImage(points, bdrate.bd_rows(points, metrics, method), pictures)


def read_map_dir(folder: str | Path, stem: str, names: Sequence[str], shape: tuple[int, ...]) -> dict[str, MapResult]:
    """Maps written by ``resjnd predict --out FOLDER/<model>`` for the image ``stem``
    (``shape``: its height and width), by source: those present, a CPL model's CPL
    image with it when written; a map of another size is refused naming its file."""
    import tifffile

    from ..images import read_image

    out: dict[str, MapResult] = {}
    for key in dict.fromkeys(map_of(n) for n in names):
        jnd_file = Path(folder) / key / f"{stem}_jnd.tif"
        if not jnd_file.is_file():
            continue
        jnd = np.asarray(tifffile.imread(jnd_file), np.float32)
        if jnd.shape != tuple(shape[:2]):
            raise ResJNDError(f"{jnd_file}: the map is {jnd.shape}, the image {tuple(shape[:2])}")
        cpl_file = jnd_file.with_name(f"{stem}_cpl.png")
        wants_cpl = any(uses_cpl(n) and map_of(n) == key for n in names)
        cpl = read_image(cpl_file).astype(np.float32) / 255 if wants_cpl and cpl_file.is_file() else None
        out[key] = MapResult(jnd, cpl, {"file": str(jnd_file)})
    return out
