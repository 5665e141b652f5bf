"""Benchmark (b): tokens/s through our llama.cpp backend against plain llama-cpp-python.

Same GGUF (the embedded default), same prompt (the scELMo gene prompt), same settings (greedy, 160 tokens,
chat format ``gemma``, one thread). Runs alternate between the two so that machine noise hits both alike.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llm_overhead.py [--repeats 6]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _results import report

import scelmo_desktop  # noqa: F401  (offline switches)
from scelmo_desktop.backends import registry
from scelmo_desktop.core.protocols import GenerationParams
from scelmo_desktop.core.text.generation import load_template

GENES = ["CD3E", "MS4A1", "LYZ", "PPBP", "NKG7", "GNLY"]


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    from llama_cpp import Llama

    registry.install_defaults()
    info = registry.find_model("gguf")
    params = GenerationParams()
    ours = registry.open_llm(info, n_threads=1)
    plain = Llama(model_path=info.path, n_ctx=2048, n_threads=1, n_threads_batch=1, chat_format="gemma", verbose=False)
    template = load_template("gene")

    def run_plain(prompt):
        started = time.perf_counter()
        result = plain.create_chat_completion(
            messages=[{"role": "user", "content": prompt}],
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            repeat_penalty=params.repeat_penalty,
            max_tokens=params.max_tokens,
            stop=list(params.stop),
            seed=params.seed,
        )
        return result["usage"]["completion_tokens"], time.perf_counter() - started

    def run_ours(prompt):
        generation = ours.generate(prompt, params)
        return generation.n_tokens, generation.seconds

    rates = {"plain": [], "ours": []}
    run_ours(template.render("CD4")), run_plain(template.render("CD4"))  # warm-up
    for i in range(args.repeats):
        prompt = template.render(GENES[i % len(GENES)])
        for name, fn in (
            (("plain", run_plain), ("ours", run_ours)) if i % 2 else (("ours", run_ours), ("plain", run_plain))
        ):
            tokens, seconds = fn(prompt)
            rates[name].append(tokens / seconds)
    result = {
        "model": info.name,
        "max_tokens": params.max_tokens,
        "repeats": args.repeats,
        "plain_tokens_per_s": round(statistics.median(rates["plain"]), 1),
        "ours_tokens_per_s": round(statistics.median(rates["ours"]), 1),
    }
    result["overhead_percent"] = round(100 * (1 - result["ours_tokens_per_s"] / result["plain_tokens_per_s"]), 2)
    return report("llm_overhead", result)


if __name__ == "__main__":
    main()
