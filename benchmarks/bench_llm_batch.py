"""Described genes per minute: llama.cpp multi-sequence batches against plain single-stream llama-cpp-python.

Same GGUF (the embedded default), same prompts (``--mode grounded``: the gene prompt with each gene's fact sheet,
the app's default; ``--mode llm``: the paper's prompt alone), same settings (greedy, 160 tokens max, chat format from the model, one thread). The baseline is
``Llama.create_chat_completion`` called gene after gene, as the original scELMo loop (and our single-stream
path) does; the batched runs use :class:`scelmo_desktop.backends.llama_batch.BatchedGenerator` through the
backend's ``generate_many``. Also reported: how many batched answers are token-for-token the baseline's.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_llm_batch.py [--genes 32] [--batch-sizes 1 4 8 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from _results import PeakRSS, report

import scelmo_desktop  # noqa: F401  (offline switches)
from scelmo_desktop.backends import registry
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.protocols import GenerationParams
from scelmo_desktop.core.text.generation import load_template


def benchmark_prompts(n: int, mode: str = "grounded") -> list[str]:
    """Gene prompts for ``n`` genes spread over pbmc68k_reduced's genes, in description mode ``mode``."""
    import scanpy as sc

    names = list(sc.datasets.pbmc68k_reduced().raw.var_names)
    genes = names[:: max(1, len(names) // n)][:n]
    sheets = gene_fact_sheets(genes)
    template = load_template("gene", mode=mode)
    return [template.render(g, sheets.texts[g]) for g in genes]


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--genes", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--mode",
        choices=("grounded", "llm"),
        default="grounded",
        help="grounded: fact sheet in the prompt (the app's default; ~110 prompt tokens, short "
        "answers); llm: the paper's prompt (~30 prompt tokens, answers run to 160 tokens)",
    )
    args = parser.parse_args()
    from llama_cpp import Llama

    registry.install_defaults()
    info = registry.find_model("gguf")
    params = GenerationParams()
    prompts = benchmark_prompts(args.genes, args.mode)

    plain = Llama(
        model_path=info.path,
        n_ctx=2048,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        chat_format=info.chat_format or "gemma",
        verbose=False,
    )
    plain.create_chat_completion(messages=[{"role": "user", "content": prompts[0]}], max_tokens=8)  # warm-up
    started = time.perf_counter()
    baseline, tokens = [], 0
    for prompt in prompts:
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
        baseline.append((result["choices"][0]["message"]["content"] or "").strip())
        tokens += result["usage"]["completion_tokens"]
    seconds = time.perf_counter() - started
    plain.close()
    rows = [
        {
            "run": "plain llama-cpp-python, one gene at a time",
            "batch_size": 1,
            "seconds": round(seconds, 1),
            "genes_per_min": round(len(prompts) / seconds * 60, 2),
            "tokens_per_s": round(tokens / seconds, 1),
            "same_text_as_plain": len(prompts),
        }
    ]
    print(rows[-1], flush=True)

    backend = registry.open_llm(info, n_threads=args.threads)
    for batch_size in args.batch_sizes:
        backend.parallel = batch_size
        with PeakRSS() as memory:
            started = time.perf_counter()
            answers = dict(backend.generate_many(prompts, params))
            seconds = time.perf_counter() - started
        tokens = sum(a.n_tokens for a in answers.values())
        rows.append(
            {
                "run": f"scELMo batched, {batch_size} sequences",
                "batch_size": batch_size,
                "seconds": round(seconds, 1),
                "genes_per_min": round(len(prompts) / seconds * 60, 2),
                "tokens_per_s": round(tokens / seconds, 1),
                "extra_memory_mb": round(memory.peak_mb),
                "same_text_as_plain": sum(answers[i].text == baseline[i] for i in range(len(prompts))),
            }
        )
        rows[-1]["speedup_vs_plain"] = round(rows[-1]["genes_per_min"] / rows[0]["genes_per_min"], 2)
        print(rows[-1], flush=True)
    backend.close()
    return report(
        f"llm_batch_{args.mode}",
        {
            "model": info.name,
            "genes": len(prompts),
            "mode": args.mode,
            "max_tokens": params.max_tokens,
            "threads": args.threads,
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} vCPU",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
