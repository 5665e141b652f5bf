#!/usr/bin/env bash
# macOS: .app bundle + .dmg from the PyInstaller spec (run on a Mac, Apple silicon or Intel, Python 3.11).
# llama-cpp-python builds with Metal by default on macOS (CMAKE_ARGS="-DGGML_METAL=on"); torch uses MPS.
#   bash packaging/macos/build_dmg.sh
# Signing/notarisation (needs an Apple Developer ID; without it users must right-click ▸ Open the first time):
#   codesign --deep --force --options runtime --sign "Developer ID Application: …" "dist/scELMo Desktop.app"
#   xcrun notarytool submit dist/scELMo-Desktop.dmg --keychain-profile … --wait && xcrun stapler staple dist/scELMo-Desktop.dmg
set -euo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/pip install pyinstaller==6.22.3
SCELMO_MACOS_BUNDLE=1 .venv/bin/pyinstaller --noconfirm --distpath dist packaging/scelmo-desktop.spec
"dist/scELMo Desktop.app/Contents/MacOS/scelmo-desktop" --selftest
hdiutil create -volname "scELMo Desktop" -srcfolder "dist/scELMo Desktop.app" -ov -format UDZO dist/scELMo-Desktop.dmg
echo "dist/scELMo-Desktop.dmg"
