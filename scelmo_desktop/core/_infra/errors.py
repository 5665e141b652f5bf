"""The one exception type for problems a user can fix (bad file, missing model, wrong field)."""


class ScelmoError(Exception):
    """A user-fixable problem. The message says what went wrong, where, and what to do.

    The CLI and GUI show ``str(error)`` as one line; only ``--debug`` shows a traceback.
    """
