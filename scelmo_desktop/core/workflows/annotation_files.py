"""What an annotation run writes: the annotated query (.h5ad), a confusion matrix when the query carries labels
(or calls per label with a preset), and the HTML report."""

from __future__ import annotations

from scelmo_desktop.core.tasks.annotate import Annotation


def write_annotation_files(query, annotation: Annotation, record: dict, out, *, label_key: str | None) -> dict:
    """The annotated query (``out``, .h5ad), and beside it a confusion matrix (with truth) and the report."""
    from pathlib import Path

    import pandas as pd

    from scelmo_desktop.core.data.io import write_h5ad
    from scelmo_desktop.core.workflows.report import confusion_png, write_annotation_report

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {}
    if "metrics" in record or "calls_per_label" in record:
        title = (
            f"scELMo {record['method']}: accuracy {record['metrics']['accuracy']:.3f}"
            if "metrics" in record
            else f"scELMo {record['method']} ({record.get('preset')} preset): calls per '{label_key}' label"
        )
        files["confusion"] = confusion_png(
            query.obs[label_key], annotation.labels, out.with_suffix(".confusion.png"), title=title
        )
    counts = pd.Series(annotation.labels).value_counts()
    files["report"] = write_annotation_report(
        out.with_suffix(".report.html"), record=record, counts=counts.to_dict(), confusion=files.get("confusion")
    )
    files["h5ad"] = write_h5ad(query, out)
    return files
