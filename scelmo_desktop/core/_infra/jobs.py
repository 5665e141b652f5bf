"""The only ties between core computations and a UI: one progress type and a cancel flag.

:class:`Progress` is ``progress(stage, done, total, message="", metrics=None)``: ``stage`` names the step
("describe", "train adaptor"), ``metrics`` carries numbers a view may plot (``{"loss": 0.41,
"val_knn_accuracy": 0.88}``) so that no door parses text. The same callable drives a tqdm bar in the terminal,
a progress bar and live curves in the app and a status line in napari. A function that works in one stage
takes ``functools.partial(progress, "stage")``: still a Progress, with the stage bound.

``cancel`` is anything with ``is_set()`` (a ``threading.Event`` in the CLI and the GUI). Cancelling raises
:class:`Cancelled` between units of work, after the last finished unit has been stored, so earlier results
stay intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Progress(Protocol):
    """``progress(stage, done, total, message="", metrics=None)``: the one progress callback every door passes in."""

    def __call__(
        self, stage: str, done: int, total: int, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None: ...


class CancelFlag(Protocol):
    """Anything with ``is_set()`` (a ``threading.Event``): once set, work stops at the next check."""

    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """Raised when the user cancels; everything finished before it has been kept."""


def no_progress(*args, **kwargs) -> None:
    """A Progress that shows nothing (with or without a bound stage)."""
    return None


def check_cancel(cancel: CancelFlag | None) -> None:
    """Raise :class:`Cancelled` when ``cancel`` is set; ``None`` never cancels."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user; finished results were kept")


class TimeLeft:
    """Seconds left in the current stage, from the pace of the work measured in it (one per door).

    Honest about what it does not know: the units a stage reports in its first half second (items found in a
    cache, a restart's finished rows) cost nothing and would make the pace look thousands of times faster, so
    they set the starting point instead; until one more unit has finished after that, the time left is unknown
    (``None``)."""

    SETTLE_SECONDS = 0.5

    def __init__(self, clock=None):
        import time

        self._clock = clock or time.perf_counter
        self._stage = None
        self._started = self._since = 0.0
        self._done_since = 0

    def update(self, stage: str, done: int, total: int) -> float | None:
        now = self._clock()
        if stage != self._stage or done < self._done_since:
            self._stage, self._started = stage, now
            self._since, self._done_since = now, done
            return None
        if now - self._started < self.SETTLE_SECONDS:
            self._since, self._done_since = now, done
            return None
        if done <= self._done_since or done >= total:
            return None
        return (now - self._since) / (done - self._done_since) * (total - done)
