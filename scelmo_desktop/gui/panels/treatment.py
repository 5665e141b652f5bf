"""Treatment & perturbation: in-silico knock-outs ranked by how far they move disease cells towards control
(with a permutation null), and prediction of unseen perturbations from gene embeddings."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton

from scelmo_desktop.gui.panels.base import combo_value, fill_obs_combo
from scelmo_desktop.gui.panels.task import TaskPanel, results_folder

TREATMENT, PERTURBATION = "in-silico treatment", "perturbation modelling"


class TreatmentPanel(TaskPanel):
    title = "Treatment & perturbation"
    explanation = (
        "Treatment: which gene knock-outs make disease cells look like control (Δ cosine, p against "
        "expression-matched random genes, repeated over seeds). Perturbation: predict the expression "
        "shift of perturbations never seen in training, against 'no change', the mean training shift "
        "and a random gene table."
    )
    run_label = "Run"
    job_name = "treatment"

    def build_form(self, form) -> None:
        self.task = QComboBox()
        self.task.addItems([TREATMENT, PERTURBATION])
        self.column = QComboBox()
        self.control = QLineEdit("control")
        self.disease = QLineEdit("disease")
        form.addRow("Analysis", self.task)
        form.addRow("Condition / perturbation column", self.column)
        form.addRow("Control value", self.control)
        form.addRow("Disease value (treatment)", self.disease)
        editors = self.add_settings(["repeats", "scale", "treatment_epochs", "n_candidates", "test_fraction"], form)
        self.repeats = editors.editor("repeats").editor
        self.example = None

    def extra_buttons(self, row) -> None:
        button = QPushButton("Use simulated example")
        button.setToolTip(
            "Treatment: control/disease cells with planted genes; perturbation: a simulated "
            "Perturb-seq over the open data's genes (see scelmo simulate-*)."
        )
        button.clicked.connect(self.use_example)
        row.addWidget(button)

    def use_example(self) -> None:
        from scelmo_desktop.core.workflows.data import simulate_condition

        project = self.project
        project.require_data()
        if self.task.currentText() == TREATMENT:
            self.example = simulate_condition(
                project.adata, label_key=project.settings.label_key, layer=project.settings.layer
            )
            fill_obs_combo(self.column, self.example, prefer="condition")
            self.status.setText(
                "Example: planted disease genes " + ", ".join(self.example.uns["simulation"]["planted_genes"])
            )
            return
        self.example = "perturbseq"  # built in the worker: it needs the gene table
        self.column.clear()
        self.column.addItem("perturbation")
        self.status.setText("Example: a simulated Perturb-seq over 120 of the open data's most variable genes.")

    def refresh(self) -> None:
        if self.example is None:
            fill_obs_combo(self.column, self.project.adata)

    def make_work(self):
        from scelmo_desktop.core.workflows.perturbation import perturb, perturbseq_example
        from scelmo_desktop.core.workflows.treatment import treat

        project = self.project
        project.require_data()
        task, column = self.task.currentText(), combo_value(self.column)
        control, disease = self.control.text().strip(), self.disease.text().strip()
        example = self.example
        folder = results_folder("treatment" if task == TREATMENT else "perturbation")
        device = project.settings.device
        simulated_cells = example is not None and not isinstance(example, str)
        simulated = {"layer": "X", "input_kind": "auto"}  # a simulated example holds its own counts in X

        def treatment(progress, cancel):
            adata = example if simulated_cells else project.adata
            with self.resources(progress, cancel, **(simulated if simulated_cells else {})) as resources:
                outcome = treat(
                    adata,
                    condition_key=column,
                    control=control,
                    disease=disease,
                    device=device,
                    data_name=project.data_name,
                    out=folder,
                    **resources,
                )
            return outcome.ranking, outcome.files["treatment_top10"]

        def perturbation(progress, cancel):
            with self.resources(progress, cancel) as resources:
                adata = project.adata
                if isinstance(example, str):  # "perturbseq": simulated over the open data's genes
                    adata = perturbseq_example(project.adata, n_genes=120, **resources)
                    resources["settings"] = resources["settings"].replace(**simulated)
                outcome = perturb(
                    adata,
                    perturbation_key=column,
                    control=control,
                    device=device,
                    data_name=project.data_name,
                    out=folder,
                    **resources,
                )
            return outcome.metrics, outcome.files["perturbation_pearson"]

        return treatment if task == TREATMENT else perturbation

    def show_result(self, result) -> None:
        frame, figure = result
        self.table.set_frame(frame)
        self.figure.show_png(figure)
        if "rank" in frame.columns:
            top = frame.head(3)
            self.status.setText(
                "Top knock-outs: "
                + ", ".join(f"{g} (p={p:.3f})" for g, p in zip(top["gene"], top["p_value"]))
                + f" · files in {figure.parent}"
            )
            self.project.results["treatment"] = frame.head(10)[["gene", "delta_cosine", "p_value"]].to_dict("records")
        else:
            self.status.setText(f"Held-out perturbations scored · files in {figure.parent}")
            self.project.results["perturbation"] = frame.to_dict("records")
