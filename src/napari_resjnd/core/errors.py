"""The two exceptions every layer shares, at the bottom of the core so that any
module may raise them without importing the stack above.

:class:`ResJNDError` marks a message meant for the user (bad input, a missing
file, a refused option): the CLI and the widgets print it as one line. Anything
else is a bug and keeps its traceback (``--debug``, the log, napari's error
notification). :class:`Cancelled` means the caller asked to stop.
"""

from __future__ import annotations


class ResJNDError(ValueError):
    """An error meant for the user: one line that names the file or argument and
    the cause. A ``ValueError`` so that callers that caught ``ValueError`` before
    still catch it."""


class Cancelled(Exception):
    """Raised when ``should_stop`` asked to stop; nothing partial is returned."""


def missing_library(what: str, package: str, extra: str = "coding") -> ResJNDError:
    """The one-line error for an optional library that is not installed: what needs
    it, and the pip command that brings it (the package alone, or the extra)."""
    return ResJNDError(f"{what} needs {package}: pip install {package} (or pip install 'napari-resjnd[{extra}]')")


def library_problem(module: str) -> str | None:
    """Why an optional library cannot be used here, in one line (None: it imports).
    One that is installed but fails to import (a broken build, a missing system
    library) counts as missing, with its import error."""
    import importlib
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
        importlib.import_module(module)
    except Exception as e:  # anything a broken install raises on import
        first = (str(e).strip().splitlines() or [""])[0]
        return f"{module} is installed but does not import ({type(e).__name__}: {first})"
    return None
