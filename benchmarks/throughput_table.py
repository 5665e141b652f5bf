"""Print issue 9's benchmark figures (benchmarks/results/*.json) as the Markdown table used in the READMEs."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def llm_rows(mode: str) -> list[str]:
    result = load(f"llm_batch_{mode}")
    if not result:
        return []
    plain = result["rows"][0]
    curve = ", ".join(
        f"{r['batch_size']}: {r['genes_per_min']:.1f} ({r['speedup_vs_plain']:.2f}x, "
        f"{r['same_text_as_plain']}/{result['genes']} same)"
        for r in result["rows"][1:]
    )
    return [
        f"| batched descriptions, {mode} prompts, {result['genes']} genes | genes/min by batch size vs plain "
        f"single-stream llama-cpp-python | plain {plain['genes_per_min']:.1f}; batch {curve} |"
    ]


def main() -> None:
    lines = ["| benchmark | measure | result |", "|---|---|---|"]
    lines += llm_rows("grounded") + llm_rows("llm")
    server = load("llm_server")
    if server:
        cells = "; ".join(f"{r['run']}: {r['genes_per_min']:.1f}" for r in server["rows"])
        lines.append(f"| server backend ({server['server']}), {server['genes']} genes | genes/min | {cells} |")
    dask = load("dask_embedding")
    if dask:
        cells = "; ".join(f"{r['route']}: {r['seconds']} s, {r['peak_mb']} MB" for r in dask["rows"])
        lines.append(
            f"| `wa`+`aa` of a {dask['h5ad_mb']} MB .h5ad ({dask['cells']:,} cells x {dask['genes']:,} "
            f"genes) | time, peak memory | {cells} |"
        )
    embedder = load("embedder")
    if embedder:
        cells = "; ".join(
            f"{r['run']}"
            + (f" (batch {r['batch_size']})" if "batch_size" in r else "")
            + (f": {r['seconds']} s" if "seconds" in r else f": {r.get('note', '')}")
            + (f", {r['ratio_vs_raw']}x" if "ratio_vs_raw" in r else "")
            + (
                f", cosine to raw median {r['cosine_to_raw_median']} / min {r['cosine_to_raw_min']}"
                if "cosine_to_raw_median" in r
                else ""
            )
            for r in embedder["rows"]
        )
        lines.append(f"| embedder, {embedder['texts']} description-length texts | seconds | {cells} |")
    atlas = load("atlas_scale")
    if atlas:
        for r in atlas["rows"]:
            lines.append(
                f"| atlas {r['cells']:,} cells x {r['dim']} | kNN / Leiden / UMAP seconds; peak process "
                f"memory | {r['knn_s']} / {r['leiden_s']} / {r['umap_s']} s (total {r['total_s']} s); "
                f"{max(r['knn_process_mb'], r['leiden_process_mb'], r['umap_process_mb'])} MB |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
