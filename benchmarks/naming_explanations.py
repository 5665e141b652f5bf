"""A local LLM's explanations of cluster names (``scelmo_desktop.core.workflows.naming.explain_names``): how long
they take, how many answers pass the checks, how often the LLM agrees with the evidence's call, and what taking its
choices (``--naming-llm choose``) does to the naming score. pbmc68k_reduced (ships with scanpy), its louvain
clusters, scored against ``bulk_labels`` by ``benchmarks/naming_score.py``:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/naming_explanations.py                 # the embedded 270M model
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/naming_explanations.py --llm my-8b-instruct.Q4_K_M.gguf

No capable GGUF ships on any registry, so the figures in docs/benchmarks.md are the embedded base model's; run it
with your own model to see what it adds. Writes ``benchmarks/results/naming_explanations.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results" / "naming_explanations.json"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", help="a GGUF by name or path (default: the embedded model)")
    parser.add_argument("--gpu-layers", type=int, default=0)
    args = parser.parse_args(argv)

    import scanpy as sc
    from naming_score import Scorer

    from scelmo_desktop.app.session import ModelSession
    from scelmo_desktop.core.data.io import select_expression
    from scelmo_desktop.core.keys import NAME_KEY
    from scelmo_desktop.core.settings import ModelSettings, PipelineSettings
    from scelmo_desktop.core.workflows.markers import markers_and_names_of_data
    from scelmo_desktop.core.workflows.naming import explain_names

    adata = sc.datasets.pbmc68k_reduced()
    settings = PipelineSettings()
    naming = markers_and_names_of_data(adata, groupby="louvain", settings=settings).naming
    truth = adata.obs["bulk_labels"].astype(str)
    scorer = Scorer()
    evidence_score = scorer.score(adata.obs[f"{NAME_KEY}_ontology_id"].astype(str), truth, "pbmc68k_reduced")
    expression = select_expression(adata, settings.layer, input_kind=settings.input_kind)
    session = ModelSession()
    llm = session.explainer(ModelSettings(mode="llm", llm=args.llm, gpu_layers=args.gpu_layers))
    started = time.perf_counter()
    explain_names(adata, naming, llm, expression, choose=True)
    seconds = time.perf_counter() - started
    session.close()
    said = [c.explanation for c in naming.groups.values() if c.explanation]
    flags = Counter(f.split(":")[0] for e in said for f in e["flags"])
    chosen_score = scorer.score(adata.obs[f"{NAME_KEY}_ontology_id"].astype(str), truth, "pbmc68k_reduced")
    result = {
        "llm": llm.describe(),
        "clusters": len(said),
        "seconds": round(seconds, 1),
        "seconds_per_cluster": round(seconds / max(len(said), 1), 1),
        "answers_passing_checks": sum(not e["flags"] for e in said),
        "flags": dict(flags),
        "agrees_with_evidence": sum(e["agrees"] for e in said),
        "runner_ups_taken": sum(c.chosen_by == "llm" for c in naming.groups.values()),
        "score_evidence": round(evidence_score["summary"]["score"], 3),
        "score_with_choices": round(chosen_score["summary"]["score"], 3),
        "answers": [{"group": g, **c.explanation} for g, c in naming.groups.items() if c.explanation],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "answers"}, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
