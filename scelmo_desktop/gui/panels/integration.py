"""Integration: batch-effect correction with no labels (the default, ``obsm['X_scelmo_integrated']``), scored with
scIB-style metrics beside the uncorrected scELMo space, PCA and Harmony (and, with a label column, the labelled
adaptor). Several samples opened together are the default batches. Data without a batch column can use the
simulated example (two batches of the demo cells)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QPushButton

from scelmo_desktop.gui.panels.base import combo_value, fill_obs_combo
from scelmo_desktop.gui.panels.task import TaskPanel, results_folder


class IntegrationPanel(TaskPanel):
    title = "Integration"
    explanation = (
        "Mixes batches (by default the samples opened together) with no labels. Metrics are on all cells together, "
        "in [0, 1], higher is better. With a label column, bio conservation is scored too (overall = 0.6 bio + "
        "0.4 batch removal) and the labelled adaptor is trained; it is scored on its own training labels, so its "
        "bio scores are optimistic. Clustering again afterwards works on the integrated space."
    )
    run_label = "Integrate"
    job_name = "integration"

    def build_form(self, form) -> None:
        self.batch = QComboBox()
        self.label = QComboBox()
        form.addRow("Batch column", self.batch)
        form.addRow("Label column (optional)", self.label)
        self.epochs = self.add_settings(["epochs", "adversarial_weight"], form).editor("epochs").editor
        self.simulated = None

    def extra_buttons(self, row) -> None:
        self.example_button = QPushButton("Use simulated example")
        self.example_button.setToolTip(
            "Two batches of the open data with gene-specific batch effects "
            "(scelmo simulate-batches); needs a label column to plant the effects by cell type."
        )
        self.example_button.clicked.connect(self.use_example)
        row.addWidget(self.example_button)

    def use_example(self) -> None:
        from scelmo_desktop.core.workflows.data import simulate_batches

        project = self.project
        project.require_data()
        label = project.settings.label_key or combo_value(self.label)
        if not label:
            self.status.setText("The example needs a label column (Data panel).")
            return
        self.simulated = simulate_batches(project.adata, label_key=label, layer=project.settings.layer)
        fill_obs_combo(self.batch, self.simulated, prefer="batch")
        fill_obs_combo(self.label, self.simulated, allow_none=True, prefer=label)
        self.status.setText("Simulated example ready: half of the cells are batch B with per-gene effects.")

    def _data(self):
        return self.simulated if self.simulated is not None else self.project.adata

    def refresh(self) -> None:
        if self.simulated is None:
            adata = self.project.adata
            # several samples opened together are the batches (unless the user chose another column)
            several = adata is not None and "sample" in adata.obs and adata.obs["sample"].nunique() > 1
            fill_obs_combo(self.batch, adata, prefer=self.batch.currentText() or ("sample" if several else "batch"))
            fill_obs_combo(
                self.label, adata, allow_none=True, prefer=self.label.currentText() or self.project.settings.label_key
            )

    def make_work(self):
        from scelmo_desktop.core.workflows.data import check_batch_columns as check_columns
        from scelmo_desktop.core.workflows.integration import integrate

        project = self.project
        adata = self._data()
        if adata is None:
            project.require_data()
        batch_key, label_key = combo_value(self.batch), combo_value(self.label)
        check_columns(adata, batch_key or "", label_key)
        simulated = adata is self.simulated
        changes = {"layer": "X", "input_kind": "auto"} if simulated else {}  # the example holds its own counts in X
        folder = results_folder("integration")

        def work(progress, cancel):
            with self.resources(progress, cancel, **changes) as resources:
                return integrate(
                    adata,
                    batch_key=batch_key,
                    label_key=label_key,
                    device=project.settings.device,
                    table=None if simulated else project.table,
                    data_name=project.data_name + (" (simulated batches)" if simulated else ""),
                    out=folder,
                    **resources,
                )

        return work

    def show_result(self, result) -> None:
        shown, figure = result.metrics, result.files["integration_scores"]
        self.table.set_frame(shown)
        self.figure.show_png(figure)
        default = shown.iloc[0]  # the label-free default comes first
        record = result.record
        batches = ", ".join(record.get("batches", []))
        if "nmi" in shown:
            best = shown.sort_values("overall", ascending=False).iloc[0]
            words = f"default overall {default['overall']:.3f}; best overall: {best['method']} ({best['overall']:.3f})"
        else:
            words = f"iLISI {default['ilisi']:.3f}, batch variance removed {default['pcr_batch']:.3f} (no labels)"
        self.status.setText(
            f"Integrated {batches} into obsm['X_scelmo_integrated']: {words}. Cluster again to see the clusters "
            f"and UMAP of the integrated space. Files in {figure.parent}."
        )
        columns = [c for c in ("method", "ilisi", "pcr_batch", "S_bio", "S_batch", "overall") if c in shown]
        self.project.results["integration"] = shown[columns].to_dict("records")
