"""What every task workflow does around its science: one provenance record, and its files written atomically
(tables as CSV, figures, ``provenance.json``, an HTML report section)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scelmo_desktop.core._infra.atomic import write_text_atomic
from scelmo_desktop.core._infra.hardware import torch_device
from scelmo_desktop.core._infra.provenance import now_iso, package_versions
from scelmo_desktop.core.settings import PipelineSettings
from scelmo_desktop.core.workflows.report import write_task_report


def task_record(*, settings: PipelineSettings, llm, embedder, described=(), **extra) -> dict:
    """Provenance of one task run: models with hashes, description mode, how texts were made, settings, seed,
    package versions, plus the task's own entries."""
    calls = sum(d.n_llm_calls for d in described), sum(d.n_cached for d in described)
    return {
        "created_at": now_iso(),
        "description_mode": settings.mode,
        "llm": llm.describe(),
        "embedder": embedder.info() if embedder is not None else "none",
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "llm_calls": calls[0],
        "llm_cached": calls[1],
        **extra,
        "versions": package_versions(),
    }


def device_for(requested: str) -> str:
    """The torch device a training task runs on: ``auto`` picks CUDA or MPS when present."""
    return torch_device(requested)


def write_task_files(
    out: str | Path,
    *,
    name: str,
    tables: dict[str, pd.DataFrame],
    figures: list[Path],
    record: dict,
    title: str,
    intro: str,
) -> dict[str, Path]:
    """Write ``{file: table}`` CSVs, ``provenance.json`` and ``<name>_report.html`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        Path(file).stem: write_text_atomic(out / file, frame.to_csv(index=False)) for file, frame in tables.items()
    }
    files["report"] = write_task_report(
        out / f"{name}_report.html",
        title=title,
        intro=intro,
        tables={Path(f).stem.replace("_", " "): t for f, t in tables.items()},
        figures=figures,
        record=record,
    )
    files["provenance"] = write_text_atomic(out / "provenance.json", json.dumps(record, indent=2, default=str))
    files.update({Path(f).stem: Path(f) for f in figures})
    return files
