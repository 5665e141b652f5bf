"""``scelmo``: the headless entry point over the same core the GUI uses.

Errors a user can fix print one line (``error: ...``) and exit 2; ``--debug`` shows the traceback.
Ctrl-C stops a run between genes; every finished description is already stored and a re-run resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scelmo_desktop.cli.commands import COMMANDS
from scelmo_desktop.cli.parser import build_parser
from scelmo_desktop.core.settings import declared
from scelmo_desktop.core.workflows.environment import ScelmoError, enable_compile_cache


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    enable_compile_cache()  # before scanpy and UMAP load: their compiled code is read, not rebuilt
    status, message = "ok", ""
    try:
        code = COMMANDS[args.command](args)
        return code
    except ScelmoError as exc:
        status, message = "error", _with_flags(_naming_the_file(args, str(exc)))
        if args.debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        status, message = "interrupted", "stopped by the user"
        print(
            "\ninterrupted: every finished description is stored; run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    except BaseException as exc:
        status, message = "crashed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _audit(args, status, message)


# core names settings in words every door understands ("the layer setting"); the terminal also gets the flag
FLAG_HINTS = {f"{s.name.replace('_', ' ')} setting": s.flag_for() for s in declared()} | {
    "label column": "--label-key",
    "description store": "--store",
    "llm description mode": "--mode llm",
    "allow-remote setting": "--allow-remote",
    "candidate cell types": "--candidates",
}


def _with_flags(message: str) -> str:
    flags = [flag for words, flag in FLAG_HINTS.items() if words in message and flag not in message]
    return f"{message} [{', '.join(flags)}]" if flags else message


def _naming_the_file(args, message: str) -> str:
    """Errors about a data file's contents (a layer, NaNs, a column) name the file when they do not already."""
    files = [Path(v) for k in ("data", "data_option", "query") for v in _as_list(getattr(args, k, None)) if v]
    if (
        files
        and not any(f.name in message for f in files)
        and not any(
            str(getattr(args, k, "") or "") and Path(str(getattr(args, k))).name in message
            for k in ("reference", "file", "llm", "gene_table", "adaptor")
        )
        and not (getattr(args, "out", None) and str(args.out) in message)  # the output folder's own error
    ):
        return f"{files[0]}: {message}"
    return message


def _as_list(value) -> list:
    """An argument that may hold one path or several (``scelmo run A.h5 B.h5``)."""
    return list(value) if isinstance(value, list | tuple) else [value]


READ_ONLY = {"audit", "models", "tables"}  # listing commands change nothing and are not audited


def _audit(args, status: str, message: str) -> None:
    from scelmo_desktop.cli.session import audit_models
    from scelmo_desktop.core.workflows.environment import audit

    if args.command in READ_ONLY and getattr(args, "action", "list") == "list":
        return
    inputs = [
        v for k in ("data", "data_option", "query", "reference", "file") for v in _as_list(getattr(args, k, None)) if v
    ]
    inputs += list(getattr(args, "knowledge_files", []) or [])
    inputs += [args.adaptor] if getattr(args, "adaptor", None) else []
    outputs = [v for k in ("out", "save_adaptor") if (v := getattr(args, k, None))]
    parameters = {k: str(v) for k, v in vars(args).items() if k not in ("command",) and v is not None}
    try:
        audit.record(
            f"scelmo {args.command}",
            status=status,
            inputs=inputs,
            models=audit_models(args),
            parameters=parameters,
            outputs=outputs,
            message=message,
        )
    except OSError as exc:  # an unwritable audit log must be seen, but must not hide the command's own result
        print(f"warning: could not append to the audit log {audit.audit_path()}: {exc}", file=sys.stderr)
