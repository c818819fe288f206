"""Atomic file writes: a crash never leaves a half-written checkpoint or session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


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
