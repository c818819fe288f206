"""Known weights, their verified download cache, and safe loading and saving.

Safety rules: PyTorch checkpoints are read with ``weights_only=True`` (no
arbitrary unpickling); downloads are checked against a pinned sha256 before
they are used (pooch downloads to a temporary file and moves it only once the
hash matches, so a partial file is never used); a cached file with the wrong
hash is set aside and never loaded. With a verified cached file no network
call is made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import Cancelled, ResJNDError
from .events import Download
from .files import atomic_write, json_text
from .model import Provenance, ResJND
from .paths import CACHE_ENV, cache_dir, models_dir

log = logging.getLogger(__name__)

#: Environment variable that forbids downloads.
OFFLINE_ENV = "RESJND_OFFLINE"

#: Key under which our safetensors files keep their JSON metadata.
METADATA_KEY = "resjnd"
FORMAT_VERSION = 1


class WeightsError(ResJNDError):
    """A weights file is missing, corrupt or does not fit the network."""


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable set of weights."""

    name: str
    description: str
    url: str
    sha256: str
    filename: str
    licence: str
    size: int  # bytes, to tell users what a first run downloads
    terms: str = "academic use"  # the licence in a few words, for pickers
    channels: int = 128
    recursions: int = 25

    @property
    def size_text(self) -> str:
        return f"{self.size / 1e6:.1f} MB"


#: The registry. Its first entry is the default.
REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in [
        WeightsEntry(
            name="resjnd-cplset",
            description="ResJND trained on CPL-Set by its authors (epoch 250).",
            url=(
                "https://github.com/Knife646/ResJND/raw/"
                "06a857d11925452eb6540964f5951ad74d3e6bca/checkpoint/"
                "model_epoch_250_44.9119873046875.pth"
            ),
            sha256="de68e9f682f2f756e9efd5acdf644c910ff1d042025a94d97cb3d4144451ec09",
            filename="model_epoch_250_44.9119873046875.pth",
            size=1_209_333,
            licence=("No licence file; the authors (Knife646/ResJND) offer the model for academic use only."),
        )
    ]
}
DEFAULT_WEIGHTS = next(iter(REGISTRY))


def known_weights() -> str:
    """The registry's names with their licences, as a help text lists them."""
    return ", ".join(f"{k} ({v.licence})" for k, v in REGISTRY.items())


def is_registry_weights(model: ResJND) -> bool:
    """True for a registry entry's weights, whole (unchanged by fine-tuning): the
    weights whose reduced-precision accuracy was measured, so "auto" may pick int8."""
    return any(e.sha256 == model.provenance.sha256 for e in REGISTRY.values())


def local_models() -> list[Path]:
    """Fine-tuned checkpoints (``*.safetensors``) in :func:`models_dir`, sorted."""
    d = models_dir()
    return sorted(d.glob("*.safetensors")) if d.is_dir() else []


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}


def _cached_sha(path: Path) -> str:
    """sha256 of a file, remembered while its size and mtime do not change."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_of(path)
    return _verified[key]


def cached_path(name: str) -> Path:
    """Where the registry entry ``name`` is (or would be) cached."""
    return cache_dir() / _entry(name).filename


def is_cached(name: str) -> bool:
    """True when a file with the right hash is in the cache."""
    p = cached_path(name)
    return p.is_file() and _cached_sha(p) == _entry(name).sha256


def _entry(name: str) -> WeightsEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise WeightsError(f"unknown weights {name!r}; known: {known}") from None


class _DownloadProgress:
    """pooch's progress-bar protocol, reporting to ``progress(done, total)`` and
    raising :class:`Cancelled` when ``should_stop()`` says so (pooch then removes
    its temporary file: nothing partial is left in the cache)."""

    def __init__(
        self, progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None, expected: int
    ):
        self.progress, self.should_stop, self.total, self.done = progress, should_stop, expected, 0

    def update(self, n: int) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("download cancelled")
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def download_hint(name: str) -> str:
    """How to get registry weights ``name`` by hand."""
    entry = _entry(name)
    return (
        f"download {entry.url} yourself and put it at {cache_dir() / entry.filename} "
        f"(sha256 {entry.sha256}), or set ${CACHE_ENV} to a folder that holds it"
    )


def fetch(
    name: str = DEFAULT_WEIGHTS,
    *,
    progressbar: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Path of the verified file for registry entry ``name``, downloading if needed.

    Set ``$RESJND_OFFLINE=1`` to forbid downloads. A cached file whose hash does
    not match is renamed ``*.corrupt`` and fetched again. ``progress(done, total)``
    is called as bytes arrive; ``should_stop()`` is checked with every chunk and
    raises :class:`~.inference.Cancelled`.
    """
    entry = _entry(name)
    path = cache_dir() / entry.filename
    if path.is_file():
        if _cached_sha(path) == entry.sha256:
            log.info("weights %s: cached at %s (sha256 checked)", name, path)
            return path
        path.replace(path.with_name(path.name + ".corrupt"))
        log.warning("weights %s: the cached file's sha256 is wrong; set aside as %s.corrupt", name, path.name)
    hint = download_hint(name)
    if os.environ.get(OFFLINE_ENV, "").lower() in {"1", "true", "yes"}:
        raise WeightsError(f"weights {name!r} are not cached and ${OFFLINE_ENV} is set: {hint}")
    import pooch

    log.info("weights %s: downloading %s (%s) into %s", name, entry.url, entry.size_text, path.parent)
    bar = _DownloadProgress(progress, should_stop, entry.size) if (progress or should_stop) else progressbar
    try:
        got = pooch.retrieve(
            entry.url,
            known_hash=f"sha256:{entry.sha256}",
            fname=entry.filename,
            path=path.parent,
            downloader=pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 16),
        )
    except Cancelled:
        raise
    except ValueError as e:  # pooch's hash mismatch
        raise WeightsError(f"download of {name!r} failed its sha256 check ({e}); {hint}") from e
    except Exception as e:  # network errors of every kind
        raise WeightsError(f"could not download weights {name!r} ({e}); {hint}") from e
    return Path(got)


def iter_fetch(
    name: str = DEFAULT_WEIGHTS, *, should_stop: Callable[[], bool] | None = None
) -> Generator[Download, None, Path]:
    """:func:`fetch` as a generator: yields :class:`~.events.Download` events while
    downloading, returns the verified path. For workers that report progress by
    yielding (the widgets); closing it early or ``should_stop()`` cancels."""
    import queue
    import threading

    events: queue.Queue = queue.Queue()
    outcome: dict = {}
    stop = threading.Event()

    def stopped() -> bool:
        return stop.is_set() or (should_stop is not None and should_stop())

    def work() -> None:
        try:
            outcome["path"] = fetch(
                name, progress=lambda done, total: events.put(Download(name, done, total)), should_stop=stopped
            )
        except BaseException as e:  # handed to the caller's thread below
            outcome["error"] = e
        finally:
            events.put(None)

    thread = threading.Thread(target=work, name=f"fetch {name}", daemon=True)
    thread.start()
    try:
        while (event := events.get()) is not None:
            yield event
    finally:
        stop.set()  # the consumer went away (closed, cancelled): stop the download
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["path"]


def _read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata from a .pth state_dict or one of our safetensors."""
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder; give a weights file (.pth or .safetensors)")
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and head[8:9] == b"{":  # safetensors: u64 header length, JSON
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"{path}: damaged safetensors file ({e})") from e
        try:
            info = json.loads(meta.get(METADATA_KEY, "{}"))
        except json.JSONDecodeError as e:
            raise WeightsError(f"{path}: unreadable metadata ({e})") from e
        if not isinstance(info, dict):
            raise WeightsError(f"{path}: metadata {METADATA_KEY!r} must be a JSON object, not {type(info).__name__}")
        _check_metadata_types(path, info)
        return tensors, info
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        why = (str(e).strip().splitlines() or ["file is empty or cut short"])[0]
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {why})") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state_dict of tensors (got {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}, {}


#: The JSON types each metadata key may hold, and how to say so.
_METADATA_TYPES: dict[str, tuple[tuple[type, ...], str]] = {"format_version": ((int,), "int")}
_METADATA_TYPES["architecture"] = ((dict,), "a JSON object")
_METADATA_TYPES |= {k: ((str, type(None)), "text or null") for k in ("base_weights", "base_sha256")}
_METADATA_TYPES["training"] = ((dict, type(None)), "a JSON object or null")


def _check_metadata_types(path: Path, info: dict) -> None:
    """A key of the wrong type (hand-edited or foreign metadata) named in one line."""
    for key, (types, want) in _METADATA_TYPES.items():
        if key in info and (not isinstance(info[key], types) or isinstance(info[key], bool)):
            got = f"{type(info[key]).__name__} ({info[key]!r:.40})"
            raise WeightsError(f"{path}: metadata key {key!r} must be {want}, not {got}")


def load_model(
    source: str | os.PathLike[str] = DEFAULT_WEIGHTS,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ResJND:
    """A ResJND network in eval mode from a registry name or a weights file.

    Files may be the authors' ``.pth`` state_dict or a ``.safetensors`` written
    by :func:`save_weights`. ``model.provenance`` records where they came from.
    ``progress`` and ``should_stop`` follow a first download (see :func:`fetch`).
    """
    s = str(source)
    if s in REGISTRY:
        path, name = fetch(s, progress=progress, should_stop=should_stop), s
        entry = REGISTRY[s]
        arch = {"channels": entry.channels, "recursions": entry.recursions}
    else:
        path, name = Path(s).expanduser(), Path(s).name
        arch = None
    tensors, info = _read_state_dict(path)
    if arch is None:
        arch = info.get("architecture") if isinstance(info, dict) else None
        arch = arch if isinstance(arch, dict) else {}
        w = tensors.get("input.weight")
        try:
            arch = {
                "channels": int(arch.get("channels", w.shape[0] if w is not None else 128)),
                "recursions": int(arch.get("recursions", 25)),
            }
        except (TypeError, ValueError):
            raise WeightsError(f"{path}: unreadable architecture in its metadata ({arch})") from None
    if not (1 <= arch["channels"] <= 1024 and 1 <= arch["recursions"] <= 200):
        raise WeightsError(f"{path}: architecture {arch} is out of range (channels 1-1024, recursions 1-200)")
    model = ResJND(arch["channels"], arch["recursions"])
    _check_fits(path, model, tensors)
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        raise WeightsError(f"{path}: tensors {broken} hold NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.eval()
    model.provenance = Provenance(
        weights=name,
        path=str(path),
        sha256=_cached_sha(path),
        base_sha256=info.get("base_sha256"),
        training=dict(info.get("training") or {}),
    )
    return model


def _check_fits(path: Path, model: ResJND, tensors: dict[str, torch.Tensor]) -> None:
    want = model.state_dict()
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if extra:
        problems.append(f"unexpected keys {extra}")
    for k in sorted(set(want) & set(tensors)):
        if tuple(tensors[k].shape) != tuple(want[k].shape):
            problems.append(f"{k} has shape {tuple(tensors[k].shape)}, expected {tuple(want[k].shape)}")
    if problems:
        raise WeightsError(f"{path}: not ResJND weights: " + "; ".join(problems))


def save_weights(model: ResJND, path: str | os.PathLike, *, training: dict | None = None) -> Path:
    """Write ``model`` as safetensors with JSON metadata, atomically.

    The metadata records the architecture, the sha256 of the weights it started
    from (``model.provenance``) and an optional training summary.
    """
    from safetensors.torch import save_file

    prov = model.provenance
    info = {
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "base_weights": prov.weights,
        "base_sha256": prov.origin_sha256,
        "training": training or {},
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={METADATA_KEY: json_text(info, None)}))
