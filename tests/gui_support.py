"""The app under test (a pytest plugin, see conftest.py): a real main window, offscreen, with its own settings
file; and waiting for its job. Qt is imported only by the tests that use the window."""

import gc

import pytest


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from scelmo_desktop.gui.app import collect_garbage_in_the_ui_thread
    from scelmo_desktop.gui.main_window import MainWindow

    collector = collect_garbage_in_the_ui_thread()  # as the app does: cycles are collected in the UI thread only
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.project.settings.threads = 1
    yield win
    if win.job is not None:
        win.job.cancel()
        win.job.wait(30)
    from PySide6.QtCore import QCoreApplication, QEvent

    # the window and this test's Qt garbage end here, in the UI thread, never in a later test's job thread
    win.close()
    win.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    collector.timer.stop()
    gc.collect()
    gc.enable()  # tests without a window collect as usual


def finish(qtbot, window, timeout_s=900):
    """Wait until the window's job has ended and its outcome has reached the window, and so for each job that
    outcome starts (opening a result file starts reading its saved markers)."""
    job = None
    while window.job is not None and window.job is not job:
        job = window.job
        qtbot.waitUntil(lambda job=job: job.delivered, timeout=timeout_s * 1000)
        qtbot.wait(50)  # the outcome's other handlers, queued behind the one that marked it delivered
