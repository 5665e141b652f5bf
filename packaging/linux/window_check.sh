#!/usr/bin/env bash
# The real-display check of an installed or frozen app: start Xvfb, open the app with the demo, grab the screen
# once the window shows, and verify the picture (scelmo_desktop.gui.window_check). Prints the start-up seconds.
#   bash packaging/linux/window_check.sh [APP]   (default: /usr/bin/scelmo-desktop, the installed .deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
APP="${1:-/usr/bin/scelmo-desktop}"
command -v Xvfb >/dev/null || { echo "window_check: Xvfb is needed (apt-get install xvfb xauth)"; exit 2; }
OUT="$(mktemp -d)"
exec 3> "$OUT/display"
Xvfb -displayfd 3 -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
trap 'kill $XVFB 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/display" ] && break; sleep 0.1; done
DISPLAY=":$(head -n1 "$OUT/display")" SCELMO_HOME="$OUT/home" "$APP" --demo --window-check "$OUT/window.png"
.venv/bin/python -m scelmo_desktop.gui.window_check "$OUT/window.png"
echo "screenshot: $OUT/window.png"
