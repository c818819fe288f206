"""What every ``resjnd`` command shares: one-line errors, argument types that check
their values before any work, and the checks of output paths and devices."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from ..core.devices import AUTO, DEVICE_HELP, INT8, PRECISIONS
from ..core.errors import ResJNDError
from ..core.precision import INFERENCE_PRECISION_CHOICES, PRECISION_CHOICES


class UsageError(ResJNDError):
    """A bad argument or input found before any work started."""


def one_line(msg: object) -> str:
    """``msg`` on one line (a message may carry a library's multi-line text)."""
    return " ".join(str(msg).split())


def fail(msg: object, code: int = 2) -> int:
    print(f"resjnd: error: {one_line(msg)}", file=sys.stderr)
    return code


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = " ".join(self.prog.split()[1:])
        self.exit(
            2, f"resjnd: error: {command + ': ' if command else ''}{one_line(message)} (see {self.prog} --help)\n"
        )


def check_device(name: str, what: str = "--device") -> None:
    """Refuse an unknown or absent device before any work."""
    from ..core.devices import resolve_device

    try:
        resolve_device(name)
    except ValueError as e:
        raise UsageError(f"{what} {name}: {e}") from None


def _writable_dir(d: Path, what: str) -> None:
    probe = d
    while not probe.exists():  # the nearest folder that exists must take new files
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what} {d}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {d}: {probe} is not writable")
    if probe == d:
        try:
            tempfile.TemporaryFile(dir=d).close()
        except OSError as e:
            raise UsageError(f"{what} {d}: cannot write there ({e.strerror or e})") from None


def out_folder(path: str, what: str = "--out") -> Path:
    """``--out`` that must be a folder (made if missing): not a file, writable."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {p} is a file; give a folder")
    _writable_dir(p, what)
    return p


def out_file(path: str, what: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """``--out`` that must be a file path: not a folder, in a writable folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(
            f"{what} {p} is a folder; give a file name" + (f" ({', '.join(suffixes)})" if suffixes else "")
        )
    if suffixes and p.suffix.lower() not in suffixes:
        raise UsageError(f"{what} {p}: the file must end in {' or '.join(suffixes)}")
    _writable_dir(p.parent, what)
    return p


#: ``command(parent, name, help=...)``: a subcommand parser with the options every command shares.
Command = Callable[..., argparse.ArgumentParser]


def add_compute(parser: argparse.ArgumentParser, training: bool) -> None:
    """--device and --precision, with the choices and rules of core.devices and core.precision."""
    parser.add_argument(
        "--device", default=AUTO, help=f"{DEVICE_HELP} (default: {AUTO}, the best device on this machine)"
    )
    fp32, bf16, fp16 = PRECISIONS
    gpu = f"on a CUDA GPU {bf16} where it supports it, else {fp16}"
    if training:
        help_ = f"{AUTO} (default): {gpu}; on a CPU {bf16} autocast where it runs natively, else {fp32}; MPS: {fp32}"
    else:
        help_ = (
            f"{AUTO} (default): {gpu}; on a CPU {INT8} for the registry weights when the int8 extra is "
            f"installed, else {bf16} where the CPU runs it natively, else {fp32}; MPS: {fp32}. "
            f"{fp32} reproduces the authors' maps exactly (docs: Precision and exactness)"
        )
    parser.add_argument(
        "--precision",
        default=AUTO,
        choices=PRECISION_CHOICES if training else INFERENCE_PRECISION_CHOICES,
        help=help_,
    )


def exists(path: str, what: str, folder: bool | None = None) -> None:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p}: no such {'folder' if folder else 'file'}")
    if folder is True and not p.is_dir():
        raise UsageError(f"{what} {p} is a file; give a folder")
    if folder is False and p.is_dir():
        raise UsageError(f"{what} {p} is a folder; give a file")
