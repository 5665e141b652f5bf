"""How responsive the app stays while it describes genes with the real GGUF, and how fast Cancel stops it.

The window runs offscreen; a 20 ms timer measures how late each tick arrives (the event loop's latency) while
the Descriptions panel describes 12 genes in llm mode; Cancel is pressed after two genes are stored. Reported,
never asserted (tests/test_gui.py checks that Cancel works and keeps what was stored): the figures move with
whatever else the machine runs.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_responsiveness.py
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from _results import report  # noqa: E402


def main() -> dict:
    import torch  # noqa: F401  (before Qt, as the app does)
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from scelmo_desktop.gui.main_window import MainWindow
    from scelmo_desktop.gui.project import DEMO_SOURCE
    from scelmo_desktop.gui.screenshots import wait_for_job

    os.environ["SCELMO_HOME"] = tempfile.mkdtemp(prefix="scelmo-bench-")  # an empty store: real generation
    app = QApplication.instance() or QApplication([])
    window = MainWindow(QSettings(os.path.join(os.environ["SCELMO_HOME"], "s.ini"), QSettings.IniFormat))
    window.project.settings.threads = 1
    window.open_data(DEMO_SOURCE)
    wait_for_job(window)  # the data is read in a job of its own
    descriptions = window.panels["Descriptions"]
    descriptions.mode.setCurrentText("llm")
    descriptions.max_genes.setValue(12)
    gaps, last = [], [time.perf_counter()]

    def probe():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(probe)
    timer.start(20)
    done = []
    descriptions.run_describe()
    window.job.progress.connect(lambda stage, d, t, m, left: done.append(d))
    while not done or max(done) < 2:
        app.processEvents()
        time.sleep(0.005)
    asked = time.perf_counter()
    window.cancel_job()
    while window.job.is_running():
        app.processEvents()
        time.sleep(0.005)
    stop_seconds = time.perf_counter() - asked
    timer.stop()
    steady = sorted(gaps[5:])  # the first ticks include the job's start-up
    row = {
        "ticks": len(steady),
        "median_tick_ms": round(1000 * steady[len(steady) // 2], 1),
        "p99_tick_ms": round(1000 * steady[int(0.99 * (len(steady) - 1))], 1),
        "max_tick_ms": round(1000 * steady[-1], 1),
        "cancel_seconds": round(stop_seconds, 2),
    }
    report("gui_responsiveness", row)
    return row


if __name__ == "__main__":
    print(main())
