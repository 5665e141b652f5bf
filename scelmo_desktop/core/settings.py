"""The settings every workflow takes (one dataclass for every door), and the defaults each door shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from scelmo_desktop.core.protocols import GenerationParams

DEFAULT_GENES = 2000  # the gene set: the most variable genes (README, "Real data": 2,000 as scanpy's route)
CONDITIONINGS = ("standard", "paper")  # cell vectors: see core.embedding.cell_vectors
DEFAULT_CONDITIONING = "standard"

# LLM descriptions refine the fact sheets of the most variable genes; with the embedded 270M model on one core
# (~2 s a gene) 64 genes cost about two minutes. With that model they change the real-data metrics by no more
# than the Leiden sweep's noise (README, "Real data": default vs --mode facts); a capable GGUF is what they are for.
DEFAULT_LLM_GENES = 64


@dataclass
class PipelineSettings:
    """The settings of every workflow: input, gene set, LLM budget, description mode, decoding and clustering."""

    label_key: str | None = None
    layer: str = "auto"
    input_kind: str = "auto"  # auto | counts | normalized | log (see core.data.input_kind)
    max_genes: int | None = DEFAULT_GENES  # the gene set: most variable genes first; None: every gene
    llm_genes: int | None = DEFAULT_LLM_GENES  # of those, how many the LLM describes (None: all); rest: fact sheets
    llm_minutes: float | None = None  # stop LLM generation after this long (None: no time limit)
    conditioning: str = DEFAULT_CONDITIONING  # standard | paper (see core.embedding.cell_vectors)
    symbol_column: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    seed: int = 0
    n_neighbors: int = 15
    resolution: float | None = None  # None: sweep 0.2–2.0 when labels exist, else 1.0
    baselines: bool = True
    mode: str = "llm"  # llm | grounded | facts (see core.text.gene_texts)
    on_flag: str = "keep"  # keep | regenerate | facts: what to do with a flagged description
    knowledge_files: list[str] = field(default_factory=list)  # user knowledge files (gene_info, GenePT JSON, …)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["params"] = self.params.as_dict()
        return data
