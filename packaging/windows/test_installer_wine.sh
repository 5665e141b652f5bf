#!/usr/bin/env bash
# Compile the project's Inno Setup script unchanged with ISCC (npm's `innosetup` package) under wine, then install
# silently for all users, check that the installer's self-test step ran the installed program, and uninstall.
# The payload is a stand-in (packaging/windows/standin_app.c): the real bundle is frozen on a Windows runner
# (.github/workflows/installers.yml). Qt does not run under wine 8, so no window is checked here.
#
#   dpkg --add-architecture i386 && apt-get update
#   apt-get install wine wine64 wine32:i386 mingw-w64 xvfb xauth     # ISCC is 32-bit; the wizard needs a display
#   bash packaging/windows/test_installer_wine.sh [WORK_DIR]        (exit status 0 when every step passed)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
ISCC="$WORK/node_modules/innosetup/bin/ISCC.exe"
[ -f "$ISCC" ] || npm install --silent --prefix "$WORK" innosetup@6.4.1 >/dev/null
export WINEDEBUG=-all WINEPREFIX="${WINEPREFIX:-$WORK/wineprefix}"
# wine keeps a display-less desktop process alive for a while after a console program (ISCC) ran without X; a
# setup started meanwhile joins it and fails its wizard form ("Error reading FPreparingMemo.Lines.Strings: A call
# to an OS function failed"). So every step waits for the wine server to end before the next starts.
wine winecfg /v win7 >/dev/null 2>&1 || true
wineserver --wait
# the tree the .iss expects: packaging\windows\*.iss and ..\..\dist\scelmo-desktop\
STAGE="$WORK/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE/packaging/windows" "$STAGE/dist/scelmo-desktop"
cp "$ROOT/packaging/windows/scelmo-desktop.iss" "$STAGE/packaging/windows/"
x86_64-w64-mingw32-gcc -O1 -static "$ROOT/packaging/windows/standin_app.c" -o "$STAGE/dist/scelmo-desktop/scelmo-desktop.exe"
echo "compile: ISCC $(winepath -w "$STAGE/packaging/windows/scelmo-desktop.iss")"
wine "$ISCC" /Q "$(winepath -w "$STAGE/packaging/windows/scelmo-desktop.iss")"
wineserver --wait
SETUP="$(ls "$STAGE"/dist/*-setup.exe)"
echo "built: $(basename "$SETUP") ($(stat -c %s "$SETUP") bytes, sha256 $(sha256sum "$SETUP" | cut -c1-16)…)"
TARGET='C:\scelmo-test'
# even a /VERYSILENT setup creates its wizard window: without an X display wine fails it ("A call to an OS function
# failed"), so setup and uninstall run on a virtual display
LOG="$(winepath -w "$WORK/install.log")"
INSTALLED="$(winepath -u "$TARGET")"
wineserver --wait  # winepath, too, leaves a display-less desktop behind
xvfb-run -a wine "$SETUP" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /ALLUSERS "/DIR=$TARGET" "/LOG=$LOG" \
  </dev/null >"$WORK/setup.out" 2>&1 || true
[ -f "$INSTALLED/scelmo-desktop.exe" ] || { echo "FAIL: not installed (see $WORK/install.log)"; exit 1; }
[ -f "$INSTALLED/selftest.ok" ] || { echo "FAIL: the installer's --selftest step did not run the program"; exit 1; }
echo "installed to $TARGET; the installer's self-test step ran the installed program"
xvfb-run -a wine "$INSTALLED/unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART
for _ in $(seq 30); do [ -f "$INSTALLED/scelmo-desktop.exe" ] || break; sleep 1; done  # the uninstaller re-spawns
[ ! -f "$INSTALLED/scelmo-desktop.exe" ] || { echo "FAIL: uninstall left $INSTALLED/scelmo-desktop.exe"; exit 1; }
echo "uninstalled: PASS"
