"""What every widget worker shares, Qt-free: the typed :class:`Outcome` a worker
returns, :func:`guarded` (exceptions become outcomes, so a worker never raises
into Qt), and :func:`ensure_weights` (first-use download as events).

Worker bodies are generators of :mod:`napari_resjnd.core.events` that return an
:class:`Outcome`; they take plain values and a stop event, never widgets, so tests
drive them with :func:`napari_resjnd.core.events.drive` and no viewer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..core.errors import Cancelled, ResJNDError
from ..core.events import Download, Status
from ..core.weights import REGISTRY, WeightsError, is_cached, iter_fetch

log = logging.getLogger(__name__)
T = TypeVar("T")
#: The kind of progress a worker body yields (core events, or a widget's own such as TilePreview).
E = TypeVar("E")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """How a worker ended: its value, or why there is none."""

    #: The result (a Prediction, a FinetuneResult, an Evaluation); None unless it succeeded.
    value: T | None = None
    #: One line for the user when it failed.
    error: str | None = None
    #: True when the user stopped it; nothing partial is kept.
    cancelled: bool = False
    #: The registry weights that could not be downloaded (offline, or a failed
    #: download): the Predict widget then offers the ways out.
    missing_weights: str | None = None
    #: The exception, when the failure was a bug (not an error meant for the user):
    #: napari's error notification then offers its traceback.
    bug: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


class MissingWeights(WeightsError):
    """Registry weights that are not cached and could not be downloaded."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def guarded(title: str, work: Generator[E, None, T]) -> Generator[E, None, Outcome[T]]:
    """Run ``work``, passing its events on; its value, a cancel or an error becomes
    an :class:`Outcome`. Errors meant for the user (:class:`ResJNDError`) and the
    system's own (a missing file, a full disk) give their one-line message; anything
    else is a bug: logged with its traceback, which the Outcome keeps for napari."""
    try:
        value = yield from work
    except Cancelled:
        return Outcome(cancelled=True)
    except MissingWeights as e:
        return Outcome(error=str(e), missing_weights=e.name)
    except ResJNDError as e:
        return Outcome(error=str(e))
    except (OSError, MemoryError) as e:
        return Outcome(error=f"{type(e).__name__}: {e}")
    except Exception as e:
        log.exception("%s failed", title)
        return Outcome(error=f"{type(e).__name__}: {e} (a bug: see the traceback)", bug=e)
    return Outcome(value=value)


def ensure_weights(name: str, stop: threading.Event) -> Generator[Status | Download, None, None]:
    """Download registry weights on first use, as events; a no-op for cached
    weights and files. Raises :class:`MissingWeights` when the download fails."""
    if name not in REGISTRY or is_cached(name):
        return
    entry = REGISTRY[name]
    yield Status(f"downloading {entry.name} ({entry.size_text}, {entry.terms})…")
    try:
        yield from iter_fetch(name, should_stop=stop.is_set)
    except Cancelled:
        raise
    except WeightsError as e:
        raise MissingWeights(entry.name, str(e)) from e
