"""The app under test (a pytest plugin, see conftest.py): a real main window, offscreen, with its own settings
file; and waiting for its job. Qt is imported only by the tests that use the window."""

import pytest


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from scelmo_desktop.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.project.settings.threads = 1
    yield win
    if win.job is not None:
        win.job.cancel()
        win.job.wait(30)


def finish(qtbot, window, timeout_s=900):
    """Wait until the window's job has ended, then let its queued result signals arrive."""
    qtbot.waitUntil(lambda: window.job is not None and not window.job.is_running(), timeout=timeout_s * 1000)
    qtbot.wait(100)
