"""Models: the models folder (GGUF LLMs and sentence-transformers embedders), their size, sha256, chat format,
a RAM estimate, GPU layers and threads, adding a model by copying it in, and a test load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton

from scelmo_desktop.core.settings import SETTINGS
from scelmo_desktop.gui.panels.base import Panel
from scelmo_desktop.gui.widgets import FrameView


def ram_estimate_gb(size_bytes: int, kind: str) -> float:
    """A GGUF needs about its file size plus ~0.3 GB of context and runtime; an embedder ~3× its weights."""
    return round(size_bytes / 1e9 + 0.3 if kind == "gguf" else 3 * size_bytes / 1e9 + 0.2, 2)


class ModelsPanel(Panel):
    title = "Models"
    explanation = (
        "Local models only. Drop larger GGUF files or sentence-transformers folders into the models "
        "folder (or use Add). A file listed in the manifest whose sha256 differs is refused."
    )

    def __init__(self, window):
        super().__init__(window)
        from scelmo_desktop.backends import registry
        from scelmo_desktop.core.workflows.environment import default_threads, torch_device

        self.folder = QLabel(f"Models folder: {registry.default_models_dir()}")
        self.layout_.addWidget(self.folder)
        self.table = FrameView()
        self.layout_.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        for text, slot in (
            ("Add GGUF file…", self._add_gguf),
            ("Add embedder folder…", self._add_folder),
            ("Test-load selected", self._test_load),
            ("Rescan", self.refresh),
        ):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.layout_.addLayout(buttons)
        form = self.form("Use")
        self.llm = QComboBox()
        self.embedder = QComboBox()
        self.llm.currentTextChanged.connect(lambda t: setattr(self.project.settings, "llm", t or None))
        self.embedder.currentTextChanged.connect(lambda t: setattr(self.project.settings, "embedder", t or None))
        form.addRow(SETTINGS["llm"].words(), self.llm)
        form.addRow(SETTINGS["embedder"].words(), self.embedder)
        self.settings_form = self.add_settings(["threads", "gpu_layers", "parallel", "device", "timeout", "retries"])
        self.settings_form.editor("threads").setToolTip(
            self.settings_form.editor("threads").toolTip() + f" This computer: {default_threads()}."
        )
        form.addRow(self.settings_form)  # moved from the panel into the "Use" box
        self.server_url = QLineEdit(window.project.settings.server_url or "")
        self.server_url.setPlaceholderText("optional: http://10.0.0.5:8080/v1 (loopback or private network only)")
        self.server_url.setToolTip(
            "An OpenAI-compatible server on your site (llama.cpp server, vLLM, Ollama). "
            "When set, descriptions come from it instead of the local GGUF; public "
            "addresses are refused so data stays inside."
        )
        self.server_model = QLineEdit(window.project.settings.server_model or "")
        self.server_model.setPlaceholderText("default")
        self.server_model.setToolTip(SETTINGS["server_model"].help)
        self.server_url.editingFinished.connect(self._set_server)
        self.server_model.editingFinished.connect(
            lambda: setattr(self.project.settings, "server_model", self.server_model.text().strip() or None)
        )
        form.addRow(SETTINGS["server_url"].words(), self.server_url)
        form.addRow(SETTINGS["server_model"].words(), self.server_model)
        form.addRow("Torch device found", QLabel(torch_device("auto").upper()))
        self.status = QLabel("")
        self.layout_.addWidget(self.status)
        self.refresh()

    def refresh(self) -> None:
        from scelmo_desktop.backends import registry

        models = registry.list_models()
        self.models = models
        self.settings_form.load()
        self.server_url.setText(self.project.settings.server_url or "")
        self.server_model.setText(self.project.settings.server_model or "")
        rows = [
            {
                "name": m.name,
                "kind": m.kind,
                "size MB": round(m.size_bytes / 1e6, 1),
                "RAM est. GB": ram_estimate_gb(m.size_bytes, m.kind),
                "sha256": m.sha256[:16] + "…",
                "verified": {True: "ok", False: "MISMATCH", None: "not in manifest"}[m.verified],
                "chat format": (m.chat_format or "from GGUF") if m.kind == "gguf" else "",
                "default": "yes" if m.default else "",
                "path": m.path,
            }
            for m in models
        ]
        self.table.set_frame(pd.DataFrame(rows))
        for combo, kind, chosen in (
            (self.llm, "gguf", self.project.settings.llm),
            (self.embedder, "sentence-transformers", self.project.settings.embedder),
        ):
            combo.blockSignals(True)
            combo.clear()
            names = [m.name for m in models if m.kind == kind]
            combo.addItems(names)
            default = next((m.name for m in models if m.kind == kind and m.default), names[0] if names else "")
            combo.setCurrentText(chosen if chosen in names else default)
            combo.blockSignals(False)

    def _set_server(self) -> None:
        from scelmo_desktop.core.workflows.environment import ScelmoError, check_address

        url = self.server_url.text().strip()
        if url:
            try:
                check_address(url)
            except ScelmoError as exc:
                self.status.setText(str(exc))
                self.server_url.setText(self.project.settings.server_url or "")  # the last accepted address
                return
        self.project.settings.server_url = url or None
        self.status.setText(
            f"Descriptions will come from the server {url}." if url else "Descriptions will come from the local GGUF."
        )

    def _copy_in(self, source: Path) -> None:
        from scelmo_desktop.backends import registry

        target = registry.default_models_dir() / source.name
        if target.exists():
            self.status.setText(f"{target.name} is already in the models folder.")
            return
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        self.status.setText(f"Added {source.name}.")
        self.refresh()

    def _add_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a GGUF model", "", "GGUF (*.gguf)")
        if path:
            self._copy_in(Path(path))

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a sentence-transformers folder")
        if path:
            self._copy_in(Path(path))

    def _test_load(self) -> None:
        from scelmo_desktop.app.session import check_model

        chosen = self.table.selected_rows()
        if chosen.empty:
            self.status.setText("Select a model in the table first.")
            return
        model = next(m for m in self.models if m.path == chosen.iloc[0]["path"])
        self.window_.run_job(
            f"test-load {model.name}",
            lambda progress, cancel: check_model(model),
            lambda loads: self.status.setText(f"{model.name} loads: {loads}"),
        )
