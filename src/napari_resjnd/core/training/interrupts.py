"""Ctrl-C during a training run: never lost, never half-way through a checkpoint.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be, and a
few places swallow it: the at-fork hooks that run in the parent while DataLoader
workers are forked (every epoch: ``"Exception ignored in ... _releaseLock"``, and
training went on), ``__del__`` methods and weakref callbacks. A terminal's Ctrl-C
also reaches every worker of the process group, and a worker that dies of it
before PyTorch's own handler is in place exits with 1, which PyTorch's SIGCHLD
handler turns into "DataLoader worker ... exited unexpectedly".

So while :func:`guarded` is active (the main thread of a process that kept
Python's default handler), Ctrl-C is *recorded* first, then raised, except inside
:func:`held` sections (forking workers, writing checkpoints), after which it is
raised; :func:`check`, called between steps, raises one that was swallowed;
workers ignore Ctrl-C (:func:`ignore_in_worker`: the parent stops them), and any
error after a Ctrl-C is reported as the interruption it follows from.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _State:
    installed = False
    #: A Ctrl-C arrived during this run.
    seen = False
    #: Nesting depth of :func:`held` sections.
    holding = 0


_state = _State()


def _on_sigint(signum: int, frame: Any) -> None:
    _state.seen = True
    if not _state.holding:
        raise KeyboardInterrupt


@contextmanager
def guarded() -> Iterator[None]:
    """Install the recording handler for a run (a no-op off the main thread, where
    no signal arrives, and where the program installed its own handler)."""
    own = (
        threading.current_thread() is threading.main_thread()
        and not _state.installed
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not own:
        yield
        return
    _state.installed, _state.seen, _state.holding = True, False, 0
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    except Exception as e:  # a worker or a write cut short by the Ctrl-C: the interruption is the news
        if _state.seen:
            raise KeyboardInterrupt from e
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _state.installed = False


@contextmanager
def held(then_raise: bool = True) -> Iterator[None]:
    """A section a Ctrl-C must not cut (forking workers, writing a checkpoint): it is
    raised when the section ends (``then_raise``; else by the next :func:`check`, as
    in cleanup code that runs while another exception, or a generator's close, is on
    its way: raising there would replace it, or be ignored)."""
    _state.holding += 1
    try:
        yield
    finally:
        _state.holding -= 1
    if then_raise:
        check()


def check() -> None:
    """Raise a Ctrl-C that arrived during this run (it may have been swallowed)."""
    if _state.installed and _state.seen and not _state.holding:
        raise KeyboardInterrupt


def interrupted() -> bool:
    """Whether a Ctrl-C arrived during the guarded run."""
    return _state.installed and _state.seen


def ignore_in_worker(worker_id: int = 0) -> None:
    """A DataLoader ``worker_init_fn``: workers leave Ctrl-C to their parent, which
    stops them (they inherit a recording handler until this runs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
