#!/usr/bin/env bash
# Issue 9's benchmarks in one go (about 75 minutes on 1 thread here; the 1M-cell atlas step is most of it).
# Each writes benchmarks/results/<name>.json; the figures are copied into benchmarks/README.md by hand.
#   bash benchmarks/run_throughput.sh            # everything
#   bash benchmarks/run_throughput.sh --quick    # atlas at 100k cells only (about 20 minutes)
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
PY=../.venv/bin/python
sizes=(100000 300000 1000000)
if [ "${1:-}" = "--quick" ]; then sizes=(100000); fi
$PY bench_llm_batch.py --mode grounded   # batched vs single-stream genes/min at batch 1, 4, 8, 16
$PY bench_llm_batch.py --mode llm        # the same with the paper's prompt (long answers)
$PY bench_llm_server.py         # server backend genes/min at concurrency 1, 4, 8
$PY bench_dask_embedding.py     # Dask vs in-memory wa+aa: time and peak memory
$PY bench_embedder.py           # embedder vs raw sentence-transformers (and ONNX when installed)
$PY atlas_scale.py --sizes "${sizes[@]}"   # kNN, Leiden, UMAP at atlas scale: time and peak memory
$PY throughput_table.py              # the Markdown table of all the figures above
