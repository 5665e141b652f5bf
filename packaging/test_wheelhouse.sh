#!/usr/bin/env bash
# Install scelmo-desktop from a wheelhouse into a fresh venv with NO network (an empty network namespace), then
# run a small job with the embedded models. Needs root for 'unshare -n'.
#   bash packaging/test_wheelhouse.sh [WHEELHOUSE]        (default: dist/wheelhouse)
set -euo pipefail
cd "$(dirname "$0")/.."
WH="$(realpath "${1:-dist/wheelhouse}")"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV="$(mktemp -d)/venv"
unshare -n bash -euo pipefail -c "
  $PY -m venv '$VENV'
  '$VENV/bin/pip' install --quiet --no-index --find-links '$WH' --require-hashes -r '$WH/requirements-offline.txt'
  '$VENV/bin/pip' install --quiet --no-index --find-links '$WH' --no-deps -r '$WH/knowledge-offline.txt'
  export SCELMO_HOME=\$(mktemp -d) OMP_NUM_THREADS=1   # an installed app: models go to <user data>/models
  cd \$SCELMO_HOME   # away from the checkout, so nothing can come from the source tree
  '$VENV/bin/scelmo' models install-defaults
  '$VENV/bin/scelmo' demo --max-genes 4 --max-tokens 24 --no-baselines --out \"\$SCELMO_HOME/demo\"
  test -s \"\$SCELMO_HOME/demo/report.html\"
"
echo "wheelhouse install without network: OK ($VENV)"
