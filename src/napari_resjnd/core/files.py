"""Atomic file writes (a crash never leaves a half-written checkpoint or session) and
the one JSON writer (strict JSON: no NaN or Infinity tokens, which strict parsers refuse)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import ResJNDError


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    return atomic_write_all([(path, write)])[0]


def atomic_write_all(files: Sequence[tuple[str | os.PathLike[str], Callable[[str], object]]]) -> list[Path]:
    """Write a set of files that belong together: every ``write(tmp)`` to a temporary
    file beside its path first, then all renamed into place, in order. A write that
    fails leaves the earlier files of those names (an earlier run's set) untouched."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, write in files:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
            os.close(fd)
            staged.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600: a lab group must read results
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    return [path for _, path in staged]


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux);
    elsewhere set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def png_writer(array: np.ndarray) -> Callable[[str], None]:
    """A ``write(tmp)`` for :func:`atomic_write` that saves ``array`` as a PNG."""

    def write(tmp: str) -> None:
        from PIL import Image

        Image.fromarray(array).save(tmp, format="PNG")

    return write


def disk_full(folder: str | os.PathLike[str]) -> bool:
    """True when ``folder``'s disk has (almost) no room left: some writers report a
    full disk only as a short write."""
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def strict(value: object) -> object:
    """``value`` as strict JSON holds it: every NaN or infinite float as null (the
    reason travels in a note beside it), NumPy scalars and arrays as plain values,
    tuples as lists."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value: object, indent: int | None = 2) -> str:
    """The package's one way to make JSON: strict (RFC 8259), see :func:`strict`."""
    return json.dumps(strict(value), indent=indent, allow_nan=False)


def json_writer(value: object, indent: int | None = 2) -> Callable[[str], object]:
    """A ``write(tmp)`` for :func:`atomic_write` (and :func:`atomic_write_all`) that saves ``value`` as strict JSON."""
    text = json_text(value, indent)  # made now: a value that cannot be written fails before any file is touched
    return lambda tmp: Path(tmp).write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], value: object, indent: int | None = 2) -> Path:
    """``value`` as strict JSON at ``path``, atomically."""
    return atomic_write(path, json_writer(value, indent))


def hold_folder(folder: Path, name: str) -> Callable[[], None]:
    """Hold ``folder`` for this process (an OS lock on the file ``name`` in it, made if
    missing, released when the process ends however it ends): :class:`ResJNDError`
    when another process holds it. Returns what releases it (and removes the file).
    Where the system has no advisory locks (Windows) nothing is held."""
    try:
        import fcntl
    except ImportError:
        return lambda: None
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / name, "a+")  # noqa: SIM115 (held open until released)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise ResJNDError(f"{folder}: another process holds it ({name})") from None

    def release() -> None:
        Path(f.name).unlink(missing_ok=True)
        f.close()

    return release
