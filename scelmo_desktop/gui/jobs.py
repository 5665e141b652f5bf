"""Heavy work off the UI thread: one job at a time in a Python thread, reporting through Qt signals.

Core functions take a ``Progress`` (``progress(stage, done, total, message, metrics)``) and a cancel flag; a job
hands them both, and forwards structured metrics (an epoch's loss) on their own signal for live plots. Signals
emitted from the worker thread are queued to the UI thread, so widgets are only touched there. Cancel sets the
flag; core code checks it between units of work (a gene, a batch, an epoch) and raises ``Cancelled`` after the
last finished unit has been stored, so earlier results stay intact.
"""

from __future__ import annotations

import logging
import threading
import traceback

from PySide6.QtCore import QObject, Signal, Slot

from scelmo_desktop.core.workflows.environment import Cancelled, ScelmoError, TimeLeft

log = logging.getLogger("scelmo_desktop.jobs")


class Job(QObject):
    progress = Signal(str, int, int, str, float)  # stage, done, total, message, seconds left (-1: unknown)
    metrics = Signal(str, int, object)  # stage, done, {name: value} (e.g. an epoch's loss)
    succeeded = Signal(object)
    failed = Signal(str, str)  # what happened (one line), details (traceback)
    cancelled = Signal()
    ended = Signal()

    def __init__(self, name: str, work, parent=None):
        """``work(progress, cancel)`` runs in the worker thread and returns the result."""
        super().__init__(parent)
        self.name = name
        self._work = work
        self.cancel_flag = threading.Event()
        self._thread: threading.Thread | None = None
        self._time_left = TimeLeft()
        # set when the work has returned or raised, before its outcome is signalled: a handler of that outcome may
        # start the next job (opening data, then reading its saved results) while this thread is still ending
        self._work_done = threading.Event()
        self.delivered = False  # every signal of the outcome has reached the UI thread's handlers
        self.ended.connect(self._mark_delivered)

    @Slot()
    def _mark_delivered(self) -> None:
        self.delivered = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"scelmo-job-{self.name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_flag.set()

    def is_running(self) -> bool:
        """Whether the work still runs (a job whose work returned is not running while its signals arrive)."""
        return self._thread is not None and self._thread.is_alive() and not self._work_done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_running()

    def report(self, stage: str, done: int, total: int, message: str = "", metrics=None) -> None:
        left = self._time_left.update(stage, done, total)
        self.progress.emit(stage, int(done), int(total), str(message), float(-1.0 if left is None else left))
        if metrics:
            self.metrics.emit(stage, int(done), dict(metrics))

    def _run(self) -> None:
        log.info("job %s started", self.name)
        try:
            try:
                result = self._work(self.report, self.cancel_flag)
            finally:
                self._work_done.set()
        except Cancelled:
            log.info("job %s cancelled", self.name)
            self.cancelled.emit()
        except ScelmoError as exc:
            log.warning("job %s: %s", self.name, exc)
            self.failed.emit(str(exc), "")  # a bad input or setting: the line says what to do, no traceback
        except Exception as exc:  # noqa: BLE001 - shown to the user with details, and logged
            log.exception("job %s failed", self.name)
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            log.info("job %s finished", self.name)
            self.succeeded.emit(result)
        finally:
            self.ended.emit()
