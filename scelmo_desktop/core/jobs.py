"""The only ties between core computations and a UI: a progress callback and a cancel flag.

``progress(done, total, message)`` is called from the worker; ``cancel`` is anything with ``is_set()``
(a ``threading.Event`` in the CLI and the GUI). Cancelling raises :class:`Cancelled` between units of work,
after the last finished unit has been stored, so earlier results stay intact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

ProgressFn = Callable[[int, int, str], None]


class CancelFlag(Protocol):
    def is_set(self) -> bool: ...


class Cancelled(Exception):
    """Raised when the user cancels; everything finished before it has been kept."""


def no_progress(done: int, total: int, message: str = "") -> None:
    return None


def check_cancel(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user; finished results were kept")
