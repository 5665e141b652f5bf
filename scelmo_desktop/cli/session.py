"""The CLI's side of a session: model flags → the shared session layer, tqdm progress, printed tables."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pandas as pd

from scelmo_desktop.app.session import ModelSession, open_store
from scelmo_desktop.cli.options import model_settings, pipeline_settings
from scelmo_desktop.core.protocols import LLMSource
from scelmo_desktop.core.qc.thresholds import removal_words
from scelmo_desktop.core.settings import ModelSettings, PipelineSettings
from scelmo_desktop.core.workflows.environment import TimeLeft
from scelmo_desktop.core.workflows.storage import Store


class TqdmProgress:
    """A ``Progress`` drawn as one tqdm bar per stage, on stderr, with the time left from
    :class:`TimeLeft` (tqdm's own rate counts items found in a cache as work, and showed millions of steps
    per second)."""

    BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"

    def __init__(self):
        self._stage = None
        self._bar = None
        self._time_left = TimeLeft()

    def __call__(self, stage: str, done: int, total: int, message: str = "", metrics=None) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, bar_format=self.BAR, leave=True, dynamic_ncols=True)
        left = self._time_left.update(stage, done, total)
        self._bar.total = total
        self._bar.n = done
        words = [message[:30]] if message else []
        words += [f"about {tqdm.format_interval(left)} left"] if left is not None else []
        self._bar.set_postfix_str(", ".join(words), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@dataclass
class Session:
    """What a data command works with: the models (from the shared session layer), the store, a tqdm progress."""

    store: Store
    llm: LLMSource
    embedder: object | None
    models: ModelSession
    choice: ModelSettings
    progress: TqdmProgress = field(default_factory=TqdmProgress)
    mode: str = "llm"  # the resolved description mode

    def settings(self, args) -> PipelineSettings:
        return pipeline_settings(args, mode=self.mode)

    def resources(self, args) -> dict:
        """The keyword arguments every workflow takes: settings, models, store and progress."""
        return {
            "settings": self.settings(args),
            "llm": self.llm,
            "embedder": self.embedder,
            "store": self.store,
            "progress": self.progress,
        }


def model_choice(args) -> ModelSettings:
    """The model flags of a command, as the shared session layer takes them."""
    return model_settings(args)


@contextlib.contextmanager
def open_session(args, *, need_embedder: bool):
    """Resolve the models (the LLM is loaded lazily, only if a description is missing) and open the store."""
    choice = model_choice(args)
    models = ModelSession()
    mode = models.resolved_mode(choice)
    # explaining names needs the LLM even where genes are described from their fact sheets alone
    explains = getattr(args, "naming_llm", "off") != "off"
    llm = models.explainer(choice) if explains else models.llm_source(choice)
    embedder = models.embedder(choice) if need_embedder else None
    with open_store(args.store) as store:
        session = Session(store=store, llm=llm, embedder=embedder, models=models, choice=choice, mode=mode)
        try:
            yield session
        finally:
            session.progress.close()
            models.close()


def print_metrics(metrics: pd.DataFrame) -> None:
    columns = [c for c in ("method", "nmi", "ari", "asw_label", "resolution", "n_clusters") if c in metrics.columns]
    print(metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def print_flag_counts(result) -> None:
    if result.mode == "facts":
        print("quality flags: none checked (facts mode writes no LLM text)")
        return
    counts = result.flag_counts()
    detail = ", ".join(f"{flag}: {n}" for flag, n in sorted(counts.items()) if flag != "any") or "none"
    print(
        f"quality flags: {counts.get('any', 0)} of {len(result.flags)} descriptions flagged ({detail})"
        + (f"; {len(result.fell_back)} replaced by their fact sheet" if result.fell_back else "")
    )


def audit_models(args) -> list[dict]:
    """The models a command used (name and sha256), for the audit trail."""
    if not hasattr(args, "llm") and not hasattr(args, "embedder"):
        return []
    return ModelSession().models_used(model_choice(args), embedder=hasattr(args, "embedder"))


def print_qc(record: dict) -> None:
    """One line per sample: the cells kept and removed, and by which rule (a cell can fail several)."""
    if record.get("status") != "done":
        print(f"QC: not run ({record.get('reason') or record.get('status')})")
        return
    for sample, row in record["per_sample"].items():
        reasons = removal_words({k.removeprefix("removed_"): n for k, n in row.items() if k.startswith("removed_")})
        print(
            f"QC {sample}: kept {row['kept']:,} of {row['cells']:,} cells"
            + (f"; removed {row['removed']:,} ({reasons})" if row["removed"] else "")
        )
    for note in record.get("skipped", []) + record.get("warnings", []):
        print(f"QC note: {note}")


def print_run_summary(record: dict) -> None:
    """What a run found and did: QC, the input kind, the gene set, how its texts were made, coverage."""
    if "qc" in record:
        print_qc(record["qc"])
    if "input" in record:
        inp = record["input"]
        print(
            f"input: {'declared' if inp['declared'] else 'detected'} {inp['kind']} ({inp['evidence']}); "
            f"{inp['preparation']}"
        )
    print(
        f"LLM calls: {record['llm_calls']} (cached: {record['llm_cached']})  "
        f"description mode: {record['description_mode']}"
    )
    if record.get("species_note", "none") != "none":
        print(f"note: {record['species_note']}")
    texts = record.get("descriptions") or {}
    if texts.get("genes"):
        print(
            f"descriptions: {texts['llm']} by the LLM, {texts['fact_sheets']} fact sheets"
            + (" (the LLM time budget ended generation)" if texts.get("time_budget_reached") else "")
        )
    coverage = record["coverage"]
    gene_set = coverage.get("gene_set")
    if gene_set:
        print(
            f"gene set: the {gene_set['size']} most variable of {coverage['n_genes']} genes, "
            f"{gene_set['with_vector']} with a vector ({100 * gene_set['fraction_expression']:.1f}% of expression); cell vectors: "
            f"{record.get('conditioning', 'paper')}"
        )
    else:
        print(
            f"coverage: {coverage['n_matched']} of {coverage['n_genes']} genes have an embedding "
            f"({100 * coverage.get('fraction_expression_covered', 0):.1f}% of expression)"
        )
    if "integration" in record:
        from scelmo_desktop.core.workflows.integration import integration_summary

        print(integration_summary(record["integration"]))


def print_markers(markers, note: dict | None, shown: int = 5, *, naming=None) -> None:
    """Each group's cell-type name (when named) and first marker genes passing the filter, one line per group
    (or why there are none)."""
    if markers is None:
        if note:
            print(f"markers: not found ({note.get('reason', '')})")
        return
    named = f"; cell types among {naming.n_candidates:,} ontology types" if naming is not None else ""
    print(f"marker genes ({markers.method}, each group of {markers.groupby} against the rest; first {shown}{named}):")
    for group, genes in markers.top(shown).items():
        call = naming.groups.get(group) if naming is not None else None
        name = f" {call.name} (confidence {call.confidence:.2f})" if call is not None and call.term_id else ""
        print(f"  {group}:{name} {', '.join(genes) or '(none pass the filter)'}")
        if call is not None and call.mixed:
            print(f"      may mix {call.mixed_parts()}: sub-cluster it before trusting the name")
        if call is not None and call.within:
            print(f"      {call.within_parent()}")
        if call is not None and call.explanation:
            said = call.explanation
            flags = f" [{'; '.join(said['flags'])}]" if said["flags"] else ""
            chose = "agrees" if said["agrees"] else f"prefers {said['name']}" if said["choice"] else "chose none"
            taken = ", taken" if call.chosen_by == "llm" else ""
            print(f"      LLM ({chose}{taken}){flags}: {' '.join(said['reason'].split())[:240]}")
    if naming is not None and not any(call.term_id for call in naming.groups.values()):
        print(
            "cell types: no type of the knowledge has enough of its markers among this data's genes (the marker tables "
            "name human genes; if the symbols are in another var column, point --symbol-column at it)"
        )


def open_paths(args):
    """A command's data paths opened as one AnnData (several are joined as samples; unfiltered Cell Ranger
    matrices get their cells called), with one printed line per sample saying what was opened and done."""
    from scelmo_desktop.core.workflows.intake import open_data

    names = [n.strip() for n in args.sample_names.split(",")] if getattr(args, "sample_names", None) else None
    intake = open_data(
        args.data,
        sample_names=names,
        genome=args.genome,
        cell_calling=args.cell_calling,
        umi_threshold=args.umi_threshold,
        expected_cells=args.expected_cells,
    )
    for line in intake.summary_lines():
        print(line)
    return intake
