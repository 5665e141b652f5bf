"""``scelmo-desktop --selftest``: prove an installation (or a frozen bundle) works, headless and offline.

Loads both default models (one short generation, one embedding), runs the zero-shot pipeline on the shipped
demo data with a handful of genes, writes the report, prints timings, and exits 0; any failure exits 1 with
the reason.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def run_selftest(out_dir: str | None = None) -> int:
    started = time.perf_counter()
    try:
        from scelmo_desktop.app.session import ModelSession, ModelSettings, open_store
        from scelmo_desktop.backends import registry
        from scelmo_desktop.core.protocols import GenerationParams
        from scelmo_desktop.core.settings import PipelineSettings
        from scelmo_desktop.core.workflows.data import DEMO_LABELS, DEMO_LAYER, DEMO_NAME, load_demo
        from scelmo_desktop.core.workflows.environment import prepare_install_cache
        from scelmo_desktop.core.workflows.pipeline import run_pipeline

        registry.install_defaults()
        prepare_install_cache()  # installers run the self-test: the catalog is parsed then, not on the first run
        choice, models = ModelSettings(mode="grounded", device="cpu"), ModelSession()
        llm = models.llm_source(choice)
        answer = llm.factory().generate(
            "Please summarize the major function of gene: CD3E.", GenerationParams(max_tokens=16)
        )
        embedder = models.embedder(choice)
        assert embedder.embed([answer.text or "CD3E"]).shape == (1, embedder.dim)
        print(
            f"models: {llm.name} ({llm.sha256[:12]}…) and {embedder.info()['name']} load "
            f"({time.perf_counter() - started:.1f} s)"
        )
        out = Path(out_dir or tempfile.mkdtemp(prefix="scelmo-selftest-"))
        adata = load_demo()
        settings = PipelineSettings(
            label_key=DEMO_LABELS,
            layer=DEMO_LAYER,
            max_genes=8,
            mode="grounded",
            params=GenerationParams(max_tokens=32),
        )
        with open_store(out / "store.sqlite") as store:
            result = run_pipeline(
                adata,
                settings=settings,
                llm=llm,
                embedder=embedder,
                store=store,
                data_name=f"{DEMO_NAME} (selftest)",
                out=out,
            )
        paths = result.files
        models.close()
        print(f"pipeline: {adata.n_obs} cells, NMI {result.metrics.iloc[0]['nmi']:.3f}; report {paths['report']}")
        print(f"selftest passed in {time.perf_counter() - started:.1f} s")
        return 0
    except Exception as exc:  # noqa: BLE001 - the one line an installer's log needs
        print(f"selftest FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
