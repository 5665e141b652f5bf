"""``scelmo``, the headless door: ``main`` parses a command line and calls the workflow behind the command.

``main.py`` runs a command (one-line errors, the audit trail), ``parser.py`` declares the options,
``commands.py`` and ``tasks.py`` hold the commands, ``session.py`` the terminal's side of a session
(model flags → the shared session layer, tqdm progress, printed tables).
"""

from scelmo_desktop.cli.main import main
from scelmo_desktop.cli.parser import build_parser

__all__ = ["build_parser", "main"]
