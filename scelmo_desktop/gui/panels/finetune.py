"""Fine-tuning: train the scELMo adaptor on the open data's labels on CPU, CUDA or MPS, with live loss and
validation-accuracy curves, and save it for annotating other files (the Annotation panel's "Saved adaptor",
or ``scelmo annotate --mode adaptor --adaptor FILE``)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QFileDialog, QPushButton

from scelmo_desktop.gui.panels.base import combo_value, fill_obs_combo
from scelmo_desktop.gui.panels.task import TaskPanel


def available_devices() -> list[str]:
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.insert(0, "mps")
    return devices


class FineTuningPanel(TaskPanel):
    title = "Fine-tuning"
    explanation = (
        "The light adaptor of the paper: a small network maps each gene's vector to 32 numbers; cells "
        "are expression-weighted sums; trained with cross-entropy + triplet loss, early stopping on "
        "the validation 10-NN accuracy, best weights restored. Seeds are fixed."
    )
    run_label = "Train adaptor"
    job_name = "fine-tuning"

    def build_form(self, form) -> None:
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.label = QComboBox()
        form.addRow("Device", self.device)
        form.addRow("Label column", self.label)
        self.epochs = self.add_settings(["epochs"], form).editor("epochs").editor
        self.adaptor = None

    def extra_buttons(self, row) -> None:
        self.save_button = QPushButton("Save adaptor…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save)
        row.addWidget(self.save_button)
        # live curves replace the figure area of the task layout
        self.curves = pg.PlotWidget(background="w", title="training")
        self.curves.addLegend()
        self.curves.setLabel("bottom", "epoch")
        self.loss_curve = self.curves.plot([], [], pen=pg.mkPen("#1f77b4", width=2), name="loss")
        self.val_curve = self.curves.plot(
            [], [], pen=pg.mkPen("#d62728", width=2), symbol="o", name="val 10-NN acc ×10"
        )

    def refresh(self) -> None:
        fill_obs_combo(self.label, self.project.adata, prefer=self.project.settings.label_key)
        if self.figure.parent() is not None and self.curves.parent() is None:
            splitter = self.figure.parent()
            splitter.replaceWidget(1, self.curves)

    def make_work(self):
        from scelmo_desktop.core.workflows.adaptor_annotation import fit_adaptor
        from scelmo_desktop.core.workflows.data import label_values

        project = self.project
        project.require_data()
        if project.alignment is None:
            self.status.setText("Embed the cells first (Embeddings panel): the adaptor starts from the gene table.")
            return None
        labels = label_values(project.adata, combo_value(self.label))
        expression, device, epochs = project.expression(), self.device.currentText(), project.settings.epochs
        self.losses, self.vals = [], []
        self.loss_curve.setData([], [])
        self.val_curve.setData([], [])

        def work(progress, cancel):
            return fit_adaptor(
                expression,
                project.alignment,
                labels,
                epochs=epochs,
                seed=project.settings.seed,
                device=device,
                progress=progress,
                cancel=cancel,
            )[0]

        return work

    def run(self) -> None:
        work = self.make_work()
        if work is not None:
            job = self.window_.run_job(self.job_name, work, self._done)
            if job is not None:
                job.metrics.connect(self._live)

    def _live(self, stage, done, metrics) -> None:
        """One point per epoch from the training's structured metrics (no text is parsed)."""
        if "loss" not in metrics:
            return
        self.losses.append((done, metrics["loss"]))
        self.loss_curve.setData(*zip(*self.losses))
        if "val_knn_accuracy" in metrics:
            self.vals.append((done - 1, 10 * metrics["val_knn_accuracy"]))  # checked before this epoch ran
            self.val_curve.setData(*zip(*self.vals))

    def show_result(self, adaptor) -> None:
        import pandas as pd

        self.adaptor = adaptor
        self.save_button.setEnabled(True)
        # one row per number of epochs trained: an epoch's loss ends it; a validation check comes before the next
        rows = [
            {"epochs trained": h["epoch"] + ("loss" in h), **{k: v for k, v in h.items() if k != "epoch"}}
            for h in adaptor.history
        ]
        history = pd.DataFrame(rows).groupby("epochs trained", as_index=False).first()
        history = history.reindex(columns=["epochs trained", "loss", "val_knn_accuracy"])
        self.table.set_frame(history)
        losses, checks = history.dropna(subset=["loss"]), history.dropna(subset=["val_knn_accuracy"])
        self.loss_curve.setData(losses["epochs trained"].to_numpy(), losses["loss"].to_numpy())
        self.val_curve.setData(checks["epochs trained"].to_numpy(), 10 * checks["val_knn_accuracy"].to_numpy())
        best = adaptor.provenance.get("best_val_knn_accuracy")
        self.status.setText(
            f"Trained on {adaptor.device.upper()} in {adaptor.seconds:.1f} s; best validation 10-NN "
            f"accuracy {best:.3f} after {adaptor.best_epoch} epochs (weights restored from there)."
        )
        self.project.results["fine-tuning"] = {
            "device": adaptor.device,
            "seconds": round(adaptor.seconds, 2),
            "best_val_knn_accuracy": best,
            "best_epoch": adaptor.best_epoch,
        }

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save adaptor", "adaptor.pt", "PyTorch adaptor (*.pt)")
        if path:
            self.adaptor.save(path)
            self.status.setText(
                f"Saved {path}; reuse it in Annotation (method adaptor, Saved adaptor) or with "
                "'scelmo annotate --mode adaptor --adaptor FILE'."
            )
