"""The ``resjnd`` command line: predict, finetune, evaluate, compress, patches, train,
ladder, annotations, visibility, doctor, gui. Each command lives in the module of its concern, the parser in
:mod:`.parser`; this one runs a command and turns errors into one line and an exit code."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

from ..core.errors import ResJNDError
from ._common import fail
from .parser import build_parser, check_args
from .predict import write_outputs

__all__ = ["build_parser", "main", "write_outputs"]


def _exit_now_if_native_work_runs(code: int) -> None:
    """End the process at once when OpenVINO is loaded: interrupted while it
    quantises or runs, its threads are still joinable when the interpreter's
    teardown runs the C++ destructors, which aborts ("terminate called without an
    active exception", exit 134). Outputs are atomic: nothing is left half-written."""
    import os

    if "openvino" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors meant for the user (:class:`ResJNDError`, and the
    system's own: a missing file, a full disk) are one line and exit 2 (1: some
    files failed, 130: interrupted). Anything else is a bug: one line that names a
    log file holding the traceback, exit 1; ``--debug`` raises it instead."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (its one line is printed)
        return e.code if isinstance(e.code, int) else 0
    verbose = _log_to_stderr() if args.verbose else None
    try:
        check_args(args)
        return int(args.func(args))
    except KeyboardInterrupt:
        print("resjnd: interrupted", file=sys.stderr)
        if argv is None:  # the program itself (not a caller in this process): end it now
            _exit_now_if_native_work_runs(130)
        return 130
    except ResJNDError as e:
        if args.debug:
            raise
        return fail(e)
    except (OSError, MemoryError) as e:  # the machine said no: a missing file, a full disk
        if args.debug:
            raise
        return fail(f"{type(e).__name__}: {e}")
    except Exception as e:
        if args.debug:
            raise
        log = _write_crash_log(argv)
        return fail(f"{type(e).__name__}: {e} (a bug: the traceback is in {log}; please attach it to a report)", code=1)
    finally:
        _stop_logging(verbose)


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and tools swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _log_to_stderr() -> logging.Handler:
    """``--verbose``: the package's decisions (logged at INFO) on stderr, for this command."""
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("resjnd: %(name)s: %(message)s"))
    package = logging.getLogger("napari_resjnd")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    return handler


def _stop_logging(handler: logging.Handler | None) -> None:
    if handler is not None:
        package = logging.getLogger("napari_resjnd")
        package.removeHandler(handler)
        package.setLevel(logging.NOTSET)


def _write_crash_log(argv: list[str] | None) -> Path:
    """The current exception's traceback, with the command line, in a new file."""
    from .. import __version__

    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.NamedTemporaryFile(
        "w", prefix=f"resjnd-crash-{stamp}-", suffix=".log", delete=False, encoding="utf-8"
    ) as f:
        f.write(f"resjnd {__version__}; argv: {sys.argv[:1] + (argv if argv is not None else sys.argv[1:])}\n")
        traceback.print_exc(file=f)
    return Path(f.name)
