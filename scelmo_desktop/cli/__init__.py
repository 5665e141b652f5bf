"""``scelmo``, the headless door: ``main`` parses a command line and calls the workflow behind the command.

``main.py`` holds the parser and the commands, ``tasks.py`` the analysis commands beyond clustering and
annotation, ``session.py`` the terminal's side of a session (model flags → the shared session layer, tqdm
progress, printed tables).
"""

from scelmo_desktop.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
