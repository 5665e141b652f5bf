"""Described genes per minute through the OpenAI-compatible server backend, at 1, 4 and 8 concurrent requests.

The server is llama-cpp-python's own (``python -m llama_cpp.server``) with the embedded GGUF on loopback, one
thread, the same grounded prompts and settings as ``bench_llm_batch.py``. Its single-stream in-process speed is
measured too, so the cost of HTTP and JSON is visible. Note: llama-cpp-python's server decodes one request at
a time, so concurrency here only overlaps HTTP with decoding; servers that batch requests (llama.cpp's
``llama-server --parallel N``, vLLM) turn concurrency into the batching gains of ``bench_llm_batch.py``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llm_server.py [--genes 16] [--concurrency 1 4 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _results import report
from bench_llm_batch import benchmark_prompts

import scelmo_desktop  # noqa: F401  (offline switches)
from scelmo_desktop.backends import registry
from scelmo_desktop.backends.openai_server import OpenAIServerBackend
from scelmo_desktop.core.protocols import GenerationParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_server import free_port, start_llama_server  # noqa: E402  (a test helper: starts llama.cpp's own server)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--genes", type=int, default=16)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    registry.install_defaults()
    info = registry.find_model("gguf")
    params = GenerationParams()
    prompts = benchmark_prompts(args.genes)

    rows = []
    local = registry.open_llm(info, n_threads=1)
    local.generate(prompts[0], GenerationParams(max_tokens=8))  # warm-up
    started = time.perf_counter()
    for prompt in prompts:
        local.generate(prompt, params)
    seconds = time.perf_counter() - started
    local.close()
    rows.append(
        {
            "run": "in process, single stream",
            "concurrency": 1,
            "seconds": round(seconds, 1),
            "genes_per_min": round(len(prompts) / seconds * 60, 2),
        }
    )
    print(rows[-1], flush=True)

    port = free_port()
    server = start_llama_server(info.path, port, alias="bench", chat_format=info.chat_format or "gemma")
    try:
        url = f"http://127.0.0.1:{port}/v1"
        OpenAIServerBackend(url, "bench").generate(prompts[0], GenerationParams(max_tokens=8))  # warm-up
        for concurrency in args.concurrency:
            backend = OpenAIServerBackend(url, "bench", parallel=concurrency, timeout=600)
            started = time.perf_counter()
            answers = dict(backend.generate_many(prompts, params))
            seconds = time.perf_counter() - started
            assert len(answers) == len(prompts)
            rows.append(
                {
                    "run": f"server, {concurrency} concurrent",
                    "concurrency": concurrency,
                    "seconds": round(seconds, 1),
                    "genes_per_min": round(len(prompts) / seconds * 60, 2),
                }
            )
            print(rows[-1], flush=True)
    finally:
        server.kill()
        server.wait()
    return report(
        "llm_server",
        {
            "model": info.name,
            "server": "llama_cpp.server (llama-cpp-python 0.3.36)",
            "genes": len(prompts),
            "max_tokens": params.max_tokens,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
