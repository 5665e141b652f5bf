"""Treatment & perturbation: in-silico knock-outs ranked by how far they move disease cells towards control
(with a permutation null), and prediction of unseen perturbations from gene embeddings."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton, QSpinBox

from scelmo_desktop.gui.panels.base import combo_value, fill_obs_combo
from scelmo_desktop.gui.panels.task import TaskPanel, results_folder

TREATMENT, PERTURBATION = "in-silico treatment", "perturbation modelling"


class TreatmentPanel(TaskPanel):
    title = "Treatment & perturbation"
    explanation = ("Treatment: which gene knock-outs make disease cells look like control (Δ cosine, p against "
                   "expression-matched random genes, repeated over seeds). Perturbation: predict the expression "
                   "shift of perturbations never seen in training, against 'no change', the mean training shift "
                   "and a random gene table.")
    run_label = "Run"
    job_name = "treatment"

    def build_form(self, form) -> None:
        self.task = QComboBox()
        self.task.addItems([TREATMENT, PERTURBATION])
        self.column = QComboBox()
        self.control = QLineEdit("control")
        self.disease = QLineEdit("disease")
        self.repeats = QSpinBox()
        self.repeats.setRange(1, 20)
        self.repeats.setValue(3)
        form.addRow("Analysis", self.task)
        form.addRow("Condition / perturbation column", self.column)
        form.addRow("Control value", self.control)
        form.addRow("Disease value (treatment)", self.disease)
        form.addRow("Repeats (treatment)", self.repeats)
        self.example = None

    def extra_buttons(self, row) -> None:
        button = QPushButton("Use simulated example")
        button.setToolTip("Treatment: control/disease cells with planted genes; perturbation: a simulated "
                          "Perturb-seq over the open data's genes (see scelmo simulate-*).")
        button.clicked.connect(self.use_example)
        row.addWidget(button)

    def use_example(self) -> None:
        from scelmo_desktop.core.simulate import simulate_condition

        project = self.project
        project.require_data()
        if self.task.currentText() == TREATMENT:
            self.example = simulate_condition(project.adata, label_key=project.settings.label_key,
                                              layer=project.settings.layer)
            fill_obs_combo(self.column, self.example, prefer="condition")
            self.status.setText("Example: planted disease genes " + ", ".join(self.example.uns["simulation"]["planted_genes"]))
            return
        self.example = "perturbseq"  # built in the worker: it needs the gene table
        self.column.clear()
        self.column.addItem("perturbation")
        self.status.setText("Example: a simulated Perturb-seq over 120 of the open data's most variable genes.")

    def refresh(self) -> None:
        if self.example is None:
            fill_obs_combo(self.column, self.project.adata)

    def make_work(self):
        project, session = self.project, self.window_.session
        project.require_data()
        task, column = self.task.currentText(), combo_value(self.column)
        control, disease, repeats = self.control.text().strip(), self.disease.text().strip(), self.repeats.value()
        example = self.example
        folder = results_folder("treatment" if task == TREATMENT else "perturbation")

        def table_for(expression, extra, progress, cancel):
            from scelmo_desktop.core.pipeline import gene_table_for

            mode = session.resolved_mode(project.settings)
            with session.store() as store:
                return gene_table_for([expression], settings=project.pipeline_settings(mode),
                                      llm=session.llm_source(project.settings), store=store,
                                      embedder=session.embedder(project.settings), extra_genes=extra,
                                      progress=progress, cancel=cancel)[0]

        def treatment(progress, cancel):
            from scelmo_desktop.core.gene_table import align
            from scelmo_desktop.core.io import select_expression
            from scelmo_desktop.core.treatment import in_silico_treatment, top_candidates, treatment_png

            simulated = example is not None and not isinstance(example, str)
            adata = example if simulated else project.adata
            expression = select_expression(adata, "X" if simulated else project.settings.layer)
            conditions = adata.obs[column].astype(str).to_numpy()
            candidates = top_candidates(expression, conditions, control=control, disease=disease)
            table = table_for(expression, candidates, progress, cancel)
            result = in_silico_treatment(expression, align(table, expression.var_names), conditions, control=control,
                                         disease=disease, candidates=candidates, seeds=tuple(range(repeats)),
                                         progress=progress, cancel=cancel)
            (folder / "treatment_ranking.csv").write_text(result.table.to_csv(index=False))
            return result.table, treatment_png(result.table, folder / "treatment_top10.png")

        def perturbation(progress, cancel):
            import numpy as np

            from scelmo_desktop.core.gene_selection import select_genes
            from scelmo_desktop.core.gene_table import align
            from scelmo_desktop.core.io import select_expression
            from scelmo_desktop.core.perturbation import perturbation_shifts, run_perturbation
            from scelmo_desktop.core.report import metric_bars_png
            from scelmo_desktop.core.simulate import simulate_perturbseq

            if isinstance(example, str):  # "perturbseq": simulate over the open data's genes
                base = project.expression()
                genes = [base.var_names[i] for i in sorted(select_genes(base.matrix, 120))]
                lookup = table_for(base, genes, progress, cancel).as_dict()
                genes = [g for g in genes if g in lookup]
                adata = simulate_perturbseq(genes, np.vstack([lookup[g] for g in genes]), seed=project.settings.seed)
                expression = select_expression(adata, "X")
            else:
                adata = project.adata
                expression = project.expression()
            shifts = perturbation_shifts(expression, adata.obs[column], control=control)
            perturbed = sorted({g for genes in shifts.genes for g in genes})
            table = table_for(expression, perturbed, progress, cancel)
            metrics, _ = run_perturbation(shifts, table.as_dict(), align(table, expression.var_names).matrix,
                                          seed=project.settings.seed, progress=progress, cancel=cancel)
            (folder / "perturbation_metrics.csv").write_text(metrics.to_csv(index=False))
            figure = metric_bars_png(metrics.fillna(0.0), ["pearson_all", "pearson_top20", "pearson_downstream_top20"],
                                     folder / "perturbation_pearson.png", title="unseen perturbations: Pearson")
            return metrics, figure

        return treatment if task == TREATMENT else perturbation

    def show_result(self, result) -> None:
        frame, figure = result
        self.table.set_frame(frame)
        self.figure.show_png(figure)
        if "rank" in frame.columns:
            top = frame.head(3)
            self.status.setText("Top knock-outs: " + ", ".join(f"{g} (p={p:.3f})" for g, p in
                                                               zip(top["gene"], top["p_value"])) + f" · files in {figure.parent}")
            self.project.results["treatment"] = frame.head(10)[["gene", "delta_cosine", "p_value"]].to_dict("records")
        else:
            self.status.setText(f"Held-out perturbations scored · files in {figure.parent}")
            self.project.results["perturbation"] = frame.to_dict("records")
