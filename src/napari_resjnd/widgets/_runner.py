"""One worker lifecycle for every widget: start, progress, cancel, busy, errors.

A widget owns a :class:`WorkerRunner` and hands it a worker body (a generator
function of plain values and a stop event, see :mod:`._work`). The runner runs it
in napari's thread pool, shows :class:`~napari_resjnd.core.events.Status`,
:class:`~napari_resjnd.core.events.Download` and
:class:`~napari_resjnd.core.events.TileDone` events itself, passes every event to
the widget's ``on_event``, and the :class:`~._work.Outcome` to ``on_value`` (or
reports its error). Like the stop/worker/progress/busy code each widget used to
repeat, but written once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from magicgui.widgets import ProgressBar, PushButton

from ..core.errors import ResJNDError
from ..core.events import Download, Status, TileDone
from ._common import StatusLine, report_error
from ._work import Outcome

#: The events a body yields: the core's (:data:`~napari_resjnd.core.events.Event`), or a
#: widget's own too (Predict's tile previews); its ``on_event`` takes the same kind.
E = TypeVar("E")
#: A worker body: ``body(*args, stop_event)`` yields events of type ``E`` and returns an Outcome.
Body = Callable[..., Generator[E, None, Outcome[Any]]]


class WorkerRunner:
    """Runs one background worker at a time for a widget."""

    def __init__(
        self,
        title: str,
        status: StatusLine,
        start_button: PushButton,
        stop_button: PushButton | None = None,
        progress: ProgressBar | None = None,
    ):
        self.title = title
        self.status = status
        self.start_button = start_button
        self.stop_button = stop_button
        self.progress = progress
        #: Set by :meth:`cancel`; the worker body checks it between steps.
        self.stop_event = threading.Event()
        #: The running napari worker, or None.
        self.worker: Any = None
        #: True from :meth:`start` until the run's results are all shown.
        self.busy = False
        self._held = False
        self._pbar: Any = None
        #: The widget was deleted (its dock or the viewer closed): nothing of it may be touched.
        self.gone = False
        if stop_button is not None:
            stop_button.enabled = False
        start_button.native.destroyed.connect(self._widget_gone)

    def _widget_gone(self, *_: Any) -> None:
        """The widget's Qt objects are being deleted: stop the worker; its events,
        results and end touch nothing of the widget from now on."""
        self.gone = True
        self.stop_event.set()

    def start(
        self,
        body: Body[E],
        *args: Any,
        on_value: Callable[[Any], None],
        on_event: Callable[[E], None] | None = None,
        on_failure: Callable[[Outcome[Any]], bool] | None = None,
        on_end: Callable[[Outcome[Any]], None] | None = None,
    ) -> bool:
        """Run ``body(*args, stop_event)``; False (and nothing started) when busy.
        ``on_end(outcome)`` is called first whenever the body returns (any outcome).

        ``on_failure(outcome)`` may handle a failed outcome itself (return True);
        otherwise its error is reported. ``on_value`` may call :meth:`hold` to keep
        the widget busy until it calls :meth:`release` (results shown in steps).
        """
        if self.busy:
            return False
        from napari.qt.threading import create_worker
        from napari.utils import progress

        self.stop_event = threading.Event()
        worker = create_worker(body, *args, self.stop_event, _start_thread=False)

        def returned(out: Outcome[Any]) -> None:
            if on_end is not None:
                on_end(out)
            self._on_returned(out, on_value, on_failure)

        worker.yielded.connect(lambda ev: self._on_event(ev, on_event))
        worker.returned.connect(returned)
        worker.finished.connect(self._on_finished)
        self.worker, self.busy, self._held = worker, True, False
        self.start_button.enabled = False
        if self.stop_button is not None:
            self.stop_button.enabled = True
        if self.progress is not None:
            self.progress.value = 0
        self._pbar = progress(total=0, desc=self.title)
        worker.start()
        return True

    def launch(
        self,
        make_args: Callable[[], tuple[Any, ...]],
        body: Body[E],
        *,
        on_value: Callable[[Any], None],
        on_event: Callable[[E], None] | None = None,
        on_failure: Callable[[Outcome[Any]], bool] | None = None,
        before: Callable[[], None] | None = None,
        on_end: Callable[[Outcome[Any]], None] | None = None,
    ) -> bool:
        """What every widget's Run button does: nothing while busy; ``make_args()``
        reads the widget into plain values (a :class:`ResJNDError` is reported and
        nothing starts); ``before()`` resets the widget's display; then
        :meth:`start` runs ``body(*args, stop_event)``."""
        if self.busy:
            return False
        try:
            args = make_args()
        except ResJNDError as e:
            self.report(str(e))
            return False
        if before is not None:
            before()
        return self.start(body, *args, on_value=on_value, on_event=on_event, on_failure=on_failure, on_end=on_end)

    def cancel(self, message: str = "cancelling…") -> None:
        """Ask the running worker to stop at its next check."""
        if self.worker is not None:
            self.stop_event.set()
            self.status.value = message

    def set_progress(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` in the widget's bar and napari's activity dock."""
        if total <= 0:
            return
        if self.progress is not None:
            self.progress.max = total
            self.progress.value = min(done, total)
        if self._pbar is not None:
            self._pbar.total = total
            self._pbar.update(min(done, total) - self._pbar.n)

    def report(self, message: str, detail: str | None = None, bug: BaseException | None = None) -> None:
        """A failure: status line, napari notification (with the traceback for a bug), log."""
        if bug is None:
            report_error(self.status, self.title, message, detail)
            return
        from napari.utils.notifications import notification_manager

        self.status.value = f"error: {message}"
        notification_manager.receive_error(type(bug), bug, bug.__traceback__)

    def hold(self) -> None:
        """Stay busy after the worker ends, until :meth:`release`."""
        self._held = True

    def release(self) -> None:
        """The run is over: buttons back, progress closed, not busy."""
        self._held = False
        self.busy = False
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self.gone:
            return
        self.start_button.enabled = True
        if self.stop_button is not None:
            self.stop_button.enabled = False

    def _on_event(self, ev: E, on_event: Callable[[E], None] | None) -> None:
        if self.gone:
            return
        if isinstance(ev, Status):
            self.status.value = ev.message
        elif isinstance(ev, Download):
            self.status.value = ev.text
            self.set_progress(ev.done, ev.total)
        elif isinstance(ev, TileDone):
            self.status.value = f"tile {ev.done} of {ev.total}"
            self.set_progress(ev.done, ev.total)
        if on_event is not None:
            on_event(ev)

    def _on_returned(
        self,
        out: Outcome[Any],
        on_value: Callable[[Any], None],
        on_failure: Callable[[Outcome[Any]], bool] | None,
    ) -> None:
        if self.gone:  # no widget to show it in, nor a viewer to add layers to
            return
        if out.cancelled or (self.stop_event.is_set() and out.value is None):
            self.status.value = "cancelled"
        elif out.error is not None:
            if on_failure is None or not on_failure(out):
                self.report(out.error, bug=out.bug)
        else:
            on_value(out.value)

    def _on_finished(self) -> None:
        if not self.gone and self.stop_event.is_set() and self.status.value.startswith("cancelling"):
            self.status.value = "cancelled"
        self.worker = None
        if not self._held or self.gone:
            self.release()
