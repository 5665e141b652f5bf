"""``scelmo-desktop --window-check PNG``: prove that the app opens a real window on the display it was given.

Once the main window is shown and exposed (after the demo opened, with ``--demo``), the whole screen is grabbed
from the display server (not the widget painting itself: a blank or absent window shows up as such) and
saved to ``PNG``, with ``PNG.json`` beside it: the Qt platform (``xcb`` on X11), the screen and window
geometry, the panel list, and the seconds from process start to the first exposed window. Then the app quits.
The real-display tests (``tests/test_real_display.py``, ``packaging/linux/window_check.sh``) read both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def process_age_seconds() -> float | None:
    """Seconds since this process started (its start-up time, when called at the first window)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001  (psutil missing or the platform refuses: the figure is left out)
        return None


def check_window(app, window, out: Path, *, timeout_s: float = 120.0) -> None:
    """Wait for ``window`` to be exposed (and any job to end), grab the screen into ``out`` and describe it."""
    from PySide6.QtWidgets import QApplication

    from scelmo_desktop.gui.screenshots import wait_for_job

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (
        window.isVisible() and window.windowHandle() and window.windowHandle().isExposed()
    ):
        QApplication.processEvents()
        time.sleep(0.02)
    first_window_s = process_age_seconds()
    wait_for_job(window, max(deadline - time.monotonic(), 0.0))
    for _ in range(25):  # let the last paint reach the display
        QApplication.processEvents()
        time.sleep(0.02)
    screen = window.screen()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = screen.grabWindow(0).save(str(out))
    frame = window.frameGeometry()
    info = {
        "saved": bool(saved),
        "platform": app.platformName(),
        "screen": [screen.geometry().width(), screen.geometry().height()],
        "window": [frame.x(), frame.y(), frame.width(), frame.height()],
        "exposed": bool(window.windowHandle() and window.windowHandle().isExposed()),
        "panels": list(window.panels),
        "data_loaded": window.project.adata is not None,
        "first_window_seconds": round(first_window_s, 2) if first_window_s is not None else None,
        "ready_seconds": round(process_age_seconds() or 0.0, 2),
    }
    out.with_suffix(out.suffix + ".json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(json.dumps(info))


def verify(png: Path) -> list[str]:
    """What is wrong with a ``--window-check`` result (empty when it shows a real window with the panel list):
    the X11 platform, an exposed window with the demo loaded and all panels, a screen-sized grab in which the
    window is painted (not blank, unlike the bare root around it) and its panel list holds text."""
    import numpy as np
    from PIL import Image

    png = Path(png)
    info = json.loads(png.with_suffix(png.suffix + ".json").read_text(encoding="utf-8"))
    problems = []
    if info.get("platform") not in ("xcb", "windows", "cocoa"):
        problems.append(f"platform {info.get('platform')!r} is not a real display")
    if not (info.get("exposed") and info.get("data_loaded")):
        problems.append("the window was not exposed with the demo loaded")
    from scelmo_desktop.gui.main_window import PANELS  # the app's own list, so a new panel needs no edit here

    expected = [panel.title for panel in PANELS]
    if info.get("panels") != expected:
        problems.append(f"panels {info.get('panels')}, expected {expected}")
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    if list(pixels.shape[::-1]) != list(info["screen"]):
        problems.append(f"grab {pixels.shape[::-1]} is not the screen {info['screen']}")
    x, y, width, height = info["window"]
    window = pixels[max(y, 0) : y + height, max(x, 0) : x + width]
    if width < 800 or height < 500 or window.std() < 10:
        problems.append(f"the window area ({width}x{height}) is blank or too small")
    rest = np.concatenate([pixels[y + height :, :].ravel(), pixels[:, x + width :].ravel()])
    if rest.size and abs(window.mean() - rest.mean()) < 20:
        problems.append("the window cannot be told from the screen around it")
    panel_list = window[40:300, 5:170]
    if panel_list.std() < 10 or (panel_list < 100).mean() < 0.01:
        problems.append("the panel list shows no text")
    return problems


if __name__ == "__main__":  # python -m scelmo_desktop.gui.window_check PNG: exit 1 and say why when it fails
    import sys

    found = verify(Path(sys.argv[1]))
    print("\n".join(found) or f"{sys.argv[1]}: a real window with the panel list")
    sys.exit(1 if found else 0)
