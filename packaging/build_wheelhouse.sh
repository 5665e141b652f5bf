#!/usr/bin/env bash
# Build an offline wheelhouse for IT departments and the air-gapped pip route:
#   bash packaging/build_wheelhouse.sh [OUT_DIR]        (default: dist/wheelhouse)
# It holds every pinned dependency as a wheel (torch CPU, llama-cpp-python built once), the knowledge data
# packages, and scelmo-desktop itself, plus requirements-offline.txt with the sha256 of every wheel. Install on
# a machine with no network:
#   python3.11 -m venv venv && venv/bin/pip install --no-index --find-links OUT_DIR \
#       --require-hashes -r OUT_DIR/requirements-offline.txt
#   venv/bin/pip install --no-index --find-links OUT_DIR --no-deps -r OUT_DIR/knowledge-offline.txt   # optional extra
#
# llama-cpp-python: by default llama.cpp is tuned to the build machine's CPU (GGML_NATIVE). For a wheel that runs
# on any x86-64 workstation, build it with a portable baseline, e.g.
#   CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" (AVX2-era CPUs, 2013+), or
#   CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF" (any x86-64);
# GPU variants: CMAKE_ARGS="-DGGML_CUDA=on" (needs the CUDA toolkit) or "-DGGML_METAL=on" (macOS, the default there).
# Set SCELMO_LLAMA_CMAKE_ARGS to pass one of these; empty keeps pip's cached wheel (native to this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-dist/wheelhouse}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
PIP="$WORK/venv/bin/python -m pip"
$PIP install --quiet --upgrade "pip>=24" wheel setuptools
# torch first, pinned (a CPU build); then everything else exactly as tested
$PIP wheel --quiet --no-deps -w "$OUT" "torch==$(grep -E '^torch==' requirements.lock | cut -d= -f3)"
grep -vE '^(torch|llama[-_]cpp[-_]python)==' requirements.lock > "$WORK/rest.txt"
$PIP wheel --quiet --no-deps -w "$OUT" -r "$WORK/rest.txt"
LLAMA="$(grep -iE '^llama[-_]cpp[-_]python==' requirements.lock)"
CMAKE_ARGS="${SCELMO_LLAMA_CMAKE_ARGS:-}" $PIP wheel --quiet --no-deps -w "$OUT" "$LLAMA"
$PIP wheel --quiet --no-deps -w "$OUT" -r requirements-knowledge.txt
# pip freeze leaves out setuptools, but torch declares it as a runtime dependency
$PIP wheel --quiet --no-deps -w "$OUT" "setuptools==${SCELMO_SETUPTOOLS:-84.2.1}"
$PIP wheel --quiet --no-deps --no-build-isolation -w "$OUT" .
# the offline requirements: every wheel by name==version with its hash (pip --require-hashes)
"$WORK/venv/bin/python" - "$OUT" <<'PY'
import hashlib, sys
from pathlib import Path
out = Path(sys.argv[1])
main, knowledge = [], []
# the knowledge packages go in with --no-deps: only their data files are read (their declared dependencies,
# a Tryton server or pegasus' analysis stack, are not wanted and are not in the wheelhouse)
data_only = {line.split("==")[0].strip().lower().replace("_", "-")
             for line in Path("requirements-knowledge.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
for wheel in sorted(out.glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    line = f"{name.replace('_', '-')}=={version} --hash=sha256:{digest}"
    (knowledge if name.lower().replace("_", "-") in data_only else main).append(line)
(out / "requirements-offline.txt").write_text("\n".join(main) + "\n")
(out / "knowledge-offline.txt").write_text("\n".join(knowledge) + "\n")
print(f"{len(main) + len(knowledge)} wheels in {out}")
PY
du -sh "$OUT"
