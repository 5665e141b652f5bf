"""Drive the real app through every panel on the demo data and save one PNG per panel (used by
``scelmo-desktop --screenshots DIR`` and by the GUI tests)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from scelmo_desktop.gui.project import DEMO_SOURCE, SCREENSHOT_GENES


def wait_for_job(window, timeout_s: float = 900) -> str:
    """Keep the event loop turning until the window's job has ended and its outcome has arrived, and so for each
    job that outcome starts (opening data that holds saved results reads them next); returns 'done', 'failed: …'
    (the first failure) or 'idle'."""
    if window.job is None:
        return "idle"
    outcome, job = {}, None
    deadline = time.monotonic() + timeout_s
    while window.job is not None and window.job is not job and time.monotonic() < deadline:
        job = window.job
        job.failed.connect(lambda what, details: outcome.setdefault("failed", what))
        while not job.delivered and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.02)
        for _ in range(5):  # the outcome's other handlers, queued behind the one that marked it delivered
            QApplication.processEvents()
            time.sleep(0.01)
    return "failed: " + outcome["failed"] if "failed" in outcome else "done"


def capture(window, title: str, folder: Path) -> Path:
    window.show_panel(title)
    for _ in range(10):
        QApplication.processEvents()
        time.sleep(0.02)
    path = (
        folder / f"{list(window.panels).index(title) + 1:02d}_{title.lower().replace(' & ', '_').replace(' ', '_')}.png"
    )
    window.grab().save(str(path))
    return path


def steps(window, max_genes: int):
    """(panel title, action) in pipeline order; each action may start a job."""
    panels = window.panels

    def describe():
        panels["Descriptions"].max_genes.setValue(max_genes)
        panels["Descriptions"].run_describe()

    def integration():
        panels["Integration"].use_example()
        panels["Integration"].epochs.setValue(10)
        panels["Integration"].run()

    def finetune():
        panels["Fine-tuning"].epochs.setValue(15)
        panels["Fine-tuning"].run()

    def compare():
        panels["Compare"].refresh()
        panels["Compare"].run_compare()  # the first two clusters against each other

    def treatment():
        panels["Treatment & perturbation"].use_example()
        panels["Treatment & perturbation"].repeats.setValue(2)
        panels["Treatment & perturbation"].run()

    return [
        ("Data", lambda: window.open_data(DEMO_SOURCE)),
        ("QC", lambda: None),  # the demo holds no raw counts to measure; tests/test_gui_qc.py drives this panel
        ("Models", lambda: None),
        ("Descriptions", describe),
        ("Embeddings", panels["Embeddings"].run_embed),
        ("Clustering", panels["Clustering"].run_cluster),
        ("Markers", lambda: None),  # the clustering job found its clusters' markers and names
        ("Compare", compare),
        ("Annotation", panels["Annotation"].run),
        ("Integration", integration),
        ("Fine-tuning", finetune),
        ("Treatment & perturbation", treatment),
        ("Settings", lambda: None),
    ]


def run_screenshots(window, folder: Path, *, max_genes: int = SCREENSHOT_GENES) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    window.resize(1360, 860)
    written = []
    for title, action in steps(window, max_genes):
        window.show_panel(title)
        action()
        outcome = wait_for_job(window)
        if outcome.startswith("failed"):
            print(f"{title}: {outcome}")
        written.append(capture(window, title, folder))
    return written
