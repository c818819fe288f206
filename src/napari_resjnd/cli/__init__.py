"""The ``resjnd`` command line: predict, finetune, train, patches, evaluate, ladder,
annotations, gui. Each command lives in the module of its concern, the parser in
:mod:`.parser`; this one runs a command and turns errors into one line and an exit code."""

from __future__ import annotations

import sys

from ._common import UsageError, fail
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
    """Run one command. Errors are one line and a non-zero exit (2: bad input,
    1: some files failed, 130: interrupted); ``--debug`` shows tracebacks."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (its one line is printed)
        return e.code if isinstance(e.code, int) else 0
    try:
        check_args(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("resjnd: interrupted", file=sys.stderr)
        if argv is None:  # the program itself (not a caller in this process): end it now
            _exit_now_if_native_work_runs(130)
        return 130
    except UsageError as e:
        return fail(e)
    except (ValueError, OSError, MemoryError) as e:  # bad input met during the work
        if args.debug:
            raise
        return fail(f"{e}" if isinstance(e, ValueError) else f"{type(e).__name__}: {e}")
    except Exception as e:  # a bug: one line, the traceback on request
        if args.debug:
            raise
        return fail(
            f"{type(e).__name__}: {e} (this looks like a bug; run again with --debug for the traceback)", code=1
        )
