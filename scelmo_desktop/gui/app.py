"""``scelmo-desktop`` (and ``python -m scelmo_desktop``): start the app.

scelmo-desktop                      an empty window
scelmo-desktop FILE                 open a data file or a saved project (*.scelmo.json)
scelmo-desktop --demo               open the shipped demo data with the default models ready
scelmo-desktop --screenshots DIR    open the demo, run the steps that fill every panel, save one PNG each
scelmo-desktop --window-check PNG   open (the demo with --demo), grab the screen once the window shows, quit
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path


def setup_logging() -> Path:
    """Log to a rotating file in the user data folder (Help ▸ Open log folder)."""
    from scelmo_desktop.core.workflows.environment import user_data_dir

    folder = user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        folder / "scelmo-desktop.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("scelmo_desktop")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        root.addHandler(handler)
    return folder


def install_error_hook(window) -> None:
    """Any exception escaping a button handler becomes the readable error dialog (and a log entry) instead of
    a traceback on a console the user never sees."""
    import traceback

    from scelmo_desktop.core.workflows.environment import ScelmoError
    from scelmo_desktop.gui.widgets import show_error

    log = logging.getLogger("scelmo_desktop.gui")

    def hook(kind, value, tb):
        details = "".join(traceback.format_exception(kind, value, tb))
        log.error("unhandled: %s", details)
        show_error(window, str(value) if isinstance(value, ScelmoError) else f"{kind.__name__}: {value}", details)

    sys.excepthook = hook


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scelmo-desktop", description="scELMo Desktop (offline, local models)")
    parser.add_argument("path", nargs="?", help="a data file or a saved project to open")
    parser.add_argument("--demo", action="store_true", help="open the shipped pbmc68k_reduced demo data")
    parser.add_argument(
        "--screenshots",
        type=Path,
        metavar="DIR",
        help="run the demo through every panel and write one PNG per panel into DIR, then quit",
    )
    parser.add_argument(
        "--window-check",
        type=Path,
        metavar="PNG",
        help="once the window is on the display, save a screenshot of the screen to PNG (and "
        "PNG.json: platform, geometry, panels, start-up seconds), then quit",
    )
    parser.add_argument(
        "--selftest",
        action="store_true",
        help="headless check of this installation: load both models, run the demo, exit 0/1",
    )
    parser.add_argument(
        "--mode", choices=("auto", "llm", "grounded", "facts"), help="description mode to start with (default: auto)"
    )
    from scelmo_desktop.gui.project import SCREENSHOT_GENES  # Qt-free: torch is still imported before Qt

    parser.add_argument(
        "--max-genes",
        type=int,
        default=SCREENSHOT_GENES,
        help=f"with --screenshots: genes to describe (default {SCREENSHOT_GENES} keeps it to a few minutes)",
    )
    return parser


def collect_garbage_in_the_ui_thread():
    """Python's cycle collector runs in whichever thread happens to allocate; when that is a job's worker thread
    and the garbage holds Qt objects, their destructors there deadlock against the UI thread (seen in a GUI test:
    ~QObject on the worker waiting for the GIL, the UI thread waiting for Qt's mutex). pyqtgraph's collector
    turns automatic collection off and collects on a UI-thread timer instead. Returns it (keep a reference)."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    return GarbageCollector(interval=1.0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from scelmo_desktop.core.workflows.environment import enable_compile_cache

    enable_compile_cache()  # before scanpy and UMAP load: their compiled code is read, not rebuilt
    if args.selftest:
        import scelmo_desktop  # noqa: F401  (offline switches)
        from scelmo_desktop.selftest import run_selftest

        return run_selftest()
    # torch before Qt, always: on Windows, loading Qt's DLLs first makes torch's fail to load (known clash)
    import torch  # noqa: F401
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import scelmo_desktop  # noqa: F401  (sets the offline switches)
    from scelmo_desktop.gui.main_window import MainWindow
    from scelmo_desktop.gui.project import DEMO_SOURCE, PROJECT_SUFFIX

    setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("scELMo Desktop")
    app.setOrganizationName("scELMo")
    collector = collect_garbage_in_the_ui_thread()  # noqa: F841 - kept alive for the app's lifetime
    window = MainWindow()
    install_error_hook(window)
    if args.mode:
        window.panels["Descriptions"].mode.setCurrentText(args.mode)  # also sets the project's mode
    window.show()
    if args.screenshots:
        from scelmo_desktop.gui.screenshots import run_screenshots

        def shoot():
            written = run_screenshots(window, args.screenshots, max_genes=args.max_genes)
            print("\n".join(str(p) for p in written))
            window.close()
            app.quit()

        QTimer.singleShot(0, shoot)
    elif args.demo:
        window.open_data(DEMO_SOURCE)
    elif args.path:
        (window.open_project if args.path.endswith(PROJECT_SUFFIX) else window.open_data)(args.path)
    if args.window_check:
        from scelmo_desktop.gui.window_check import check_window

        def check():
            check_window(app, window, args.window_check)
            window.close()
            app.quit()

        QTimer.singleShot(0, check)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
