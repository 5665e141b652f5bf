#!/usr/bin/env bash
# Linux: a .deb of the PyInstaller one-folder build (installs to /opt/scelmo-desktop, a menu entry and
# /usr/bin/scelmo-desktop). Double-click opens it in the desktop's package installer; or: sudo apt install ./file.deb
#   bash packaging/linux/build_deb.sh [DIST_DIR]      (DIST_DIR: where pyinstaller put scelmo-desktop/, default dist)
set -euo pipefail
cd "$(dirname "$0")/../.."
DIST="${1:-dist}"
VERSION="$(grep -m1 '^version' pyproject.toml | cut -d'"' -f2)"
ROOT="$(mktemp -d)/scelmo-desktop_${VERSION}_amd64"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications"
cp -a "$DIST/scelmo-desktop" "$ROOT/opt/scelmo-desktop"
ln -s /opt/scelmo-desktop/scelmo-desktop "$ROOT/usr/bin/scelmo-desktop"
cat > "$ROOT/usr/share/applications/scelmo-desktop.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=scELMo Desktop
Comment=LLM-powered single-cell analysis with local models only
Exec=/opt/scelmo-desktop/scelmo-desktop %f
Terminal=false
Categories=Science;Biology;
DESKTOP
SIZE_KB="$(du -sk "$ROOT/opt" | cut -f1)"
# Depends: every system library the bundle's binaries need and do not carry, mapped to its Debian package
# (packaging/linux/system_deps.py; the build stops when one maps to no package).
DEPENDS="$(python3 packaging/linux/system_deps.py --bundle "$DIST/scelmo-desktop" --format depends)"
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: scelmo-desktop
Version: ${VERSION}
Architecture: amd64
Maintainer: scELMo Desktop team <noreply@localhost>
Installed-Size: ${SIZE_KB}
Depends: ${DEPENDS}
Section: science
Priority: optional
Description: scELMo Desktop - offline LLM feature generation for single-cell data
 Gene descriptions from a local GGUF model, sentence-transformers embeddings, clustering, annotation,
 integration and treatment analysis. Nothing goes over the network.
CONTROL
dpkg-deb --root-owner-group -Zzstd --build "$ROOT" "$DIST/scelmo-desktop_${VERSION}_amd64.deb"
echo "$DIST/scelmo-desktop_${VERSION}_amd64.deb"
