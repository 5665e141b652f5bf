"""Run the ``scelmo`` command line in the test process: ``scelmo_desktop.cli.main(argv)`` with the environment a
subprocess would have had, its stdout/stderr captured, and a ``subprocess.CompletedProcess``-like result.

Spawning ``scelmo`` costs an interpreter start and the numpy/torch/scanpy imports (several seconds each on a slow
CPU); most CLI tests only need the command's behaviour (exit code, output, files), not the process boundary.
Tests that are about the process itself (signals, ``python -m``, installed entry points, a fresh interpreter's
offline switches) keep a real subprocess.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import pytest


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""


def _exit_code(exc: SystemExit, err: io.StringIO) -> int:
    """What a process exiting with ``exc`` would return (argparse exits 0 after --help, 2 on a usage error)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=err)  # sys.exit("message") prints the message and exits 1
    return 1


def run_cli(*args, env: dict | None = None, cwd=None) -> CliResult:
    """``scelmo *args`` in process. ``env`` is set (and undone afterwards) like a subprocess's environment, so the
    store, the audit log and the models folder resolve the same way (``scelmo_desktop.core._infra.paths``);
    ``cwd`` is the working folder for the call. A crash (an exception other than a user error) propagates, which
    shows its traceback in the test report instead of a returncode 1."""
    from scelmo_desktop.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, str(value))
        if cwd is not None:
            patch.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = _exit_code(exc, err)
    return CliResult(args=["scelmo", *argv], returncode=int(code or 0), stdout=out.getvalue(), stderr=err.getvalue())
