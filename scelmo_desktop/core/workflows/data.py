"""Data in and out, as the doors use it: reading and writing files, the matrix a run uses and its kind, the
shipped demo and the simulators, and the column checks a door runs before any model work."""

from scelmo_desktop.core.data import simulate
from scelmo_desktop.core.data.demo import DEMO_LABELS, DEMO_LAYER, DEMO_NAME, DEMO_SOURCE, load_demo
from scelmo_desktop.core.data.input_kind import CHOICES as INPUT_KIND_CHOICES
from scelmo_desktop.core.data.input_kind import DESCRIPTIONS as INPUT_KIND_DESCRIPTIONS
from scelmo_desktop.core.data.input_kind import detect_input_kind, effective_kind, preparation_for
from scelmo_desktop.core.data.io import (
    chosen_matrix,
    label_values,
    read_data,
    require_obs_column,
    select_expression,
    write_h5ad,
)
from scelmo_desktop.core.data.simulate import simulate_batches, simulate_condition

__all__ = [
    "DEMO_LABELS", "DEMO_LAYER", "DEMO_NAME", "DEMO_SOURCE", "INPUT_KIND_CHOICES", "INPUT_KIND_DESCRIPTIONS",
    "check_batch_columns", "chosen_matrix", "detect_input_kind", "effective_kind", "label_values", "load_demo",
    "preparation_for", "read_data", "require_obs_column", "select_expression", "simulate", "simulate_batches",
    "simulate_condition", "write_h5ad",
]  # fmt: skip


def check_batch_columns(adata, batch_key: str, label_key: str | None = None) -> None:
    """The batch and label columns integration needs, checked before any model work (imported on use: the
    integration task pulls in the clustering stack)."""
    from scelmo_desktop.core.tasks.integration import check_columns

    check_columns(adata, batch_key, label_key)
