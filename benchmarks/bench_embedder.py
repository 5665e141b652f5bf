"""Embedder throughput on 1,000 description-length texts: raw sentence-transformers against our embedder.

Texts: the fact sheets of 1,000 genes spread over the gene catalog (median ~110 characters, 90th percentile
~320, the longest ~900: the length of the descriptions the app embeds). Runs, all on one thread:
  * raw: ``SentenceTransformer.encode(texts, batch_size=32)`` (its defaults; it sorts by length itself);
  * ours: ``SentenceTransformersEmbedder.embed`` at batch sizes 8-64 (adds chunk-and-average for texts longer
    than the window, so those few vectors differ from raw's truncated ones by design);
  * ONNX Runtime, when ``onnxruntime`` and ``onnx`` are installed: the same weights exported to ONNX (fp32), and
    a dynamic int8 quantisation of them, with mean pooling and normalisation as the model's own modules do. The
    cosine to the raw vectors shows what each costs in fidelity.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embedder.py [--texts 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import report

import scelmo_desktop  # noqa: F401  (offline switches)
from scelmo_desktop.backends import registry
from scelmo_desktop.core.knowledge.facts import gene_fact_sheets
from scelmo_desktop.core.knowledge.genes import GeneCatalog


def description_texts(n: int) -> list[str]:
    catalog = GeneCatalog.load()
    names = sorted(catalog.records)
    return list(gene_fact_sheets(names[:: max(1, len(names) // n)][:n]).texts.values())


def timed(fn) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def onnx_runs(folder: str, texts: list[str], reference: np.ndarray, batch_size: int = 16) -> list[dict]:
    """Export the transformer to ONNX (fp32), quantise a copy to int8, and embed with each."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return [{"run": "ONNX Runtime", "note": "onnxruntime/onnx not installed: pip install onnxruntime onnx"}]
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        fp32, int8 = Path(work) / "model.onnx", Path(work) / "model_int8.onnx"
        sample = tokenizer(["a gene", "another gene description"], padding=True, return_tensors="pt")
        torch.onnx.export(
            LastHidden(model),
            tuple(sample[n] for n in names),
            str(fp32),
            input_names=names,
            output_names=["hidden"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["hidden"]},
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        order = np.argsort([-len(t) for t in texts])
        for label, path in (("ONNX Runtime fp32", fp32), ("ONNX Runtime int8 (dynamic)", int8)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

            def embed(session=session):
                out = np.zeros((len(texts), reference.shape[1]), dtype=np.float32)
                for start in range(0, len(texts), batch_size):
                    rows_ = order[start : start + batch_size]
                    batch = tokenizer(
                        [texts[i] for i in rows_], padding=True, truncation=True, max_length=256, return_tensors="np"
                    )
                    hidden = session.run(None, {n: batch[n].astype(np.int64) for n in names})[0]
                    mask = batch["attention_mask"][..., None].astype(np.float32)
                    pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
                    out[rows_] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
                return out

            vectors, seconds = timed(embed)
            cosine = (vectors * reference).sum(1)
            rows.append(
                {
                    "run": label,
                    "batch_size": batch_size,
                    "seconds": round(seconds, 2),
                    "cosine_to_raw_median": round(float(np.median(cosine)), 4),
                    "cosine_to_raw_min": round(float(cosine.min()), 4),
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    texts = description_texts(args.texts)
    info = registry.find_model("sentence-transformers")
    raw = SentenceTransformer(info.path, device="cpu", local_files_only=True)
    raw.encode(texts[:32])  # warm-up
    reference, raw_seconds = timed(lambda: raw.encode(texts, batch_size=32, normalize_embeddings=True))
    rows = [
        {
            "run": "raw sentence-transformers encode",
            "batch_size": 32,
            "seconds": round(raw_seconds, 2),
            "texts_per_s": round(len(texts) / raw_seconds, 1),
        }
    ]
    print(rows[-1], flush=True)
    ours = registry.open_embedder(info, device="cpu")
    fits = np.array([ours.count_tokens(t) <= ours.max_seq_length for t in texts])
    for batch_size in (8, 16, 32, 64):
        vectors, seconds = timed(lambda size=batch_size: ours.embed(texts, batch_size=size))
        rows.append(
            {
                "run": "scELMo embedder",
                "batch_size": batch_size,
                "seconds": round(seconds, 2),
                "texts_per_s": round(len(texts) / seconds, 1),
                "ratio_vs_raw": round(raw_seconds / seconds, 2),
                "max_abs_diff_texts_within_window": float(np.abs(vectors[fits] - reference[fits]).max()),
            }
        )
        print(rows[-1], flush=True)
    rows += onnx_runs(info.path, texts, reference)
    lengths = [len(t) for t in texts]
    return report(
        "embedder",
        {
            "model": info.name,
            "texts": len(texts),
            "threads": 1,
            "chars_median": int(np.median(lengths)),
            "chars_p90": int(np.percentile(lengths, 90)),
            "texts_beyond_window": int((~fits).sum()),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
