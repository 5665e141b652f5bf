"""What every panel shares: a title and explanation, access to the project and the job runner, and the
``refresh`` hook called when the data or results change."""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class Panel(QWidget):
    title = "Panel"
    explanation = ""

    def __init__(self, window):
        super().__init__()
        self.window_ = window  # the MainWindow: project, session, run_job()
        self.setting_forms = []  # the declared settings this panel shows (reloaded when a project opens)
        self.layout_ = QVBoxLayout(self)
        heading = QLabel(f"<h2 style='margin:0'>{self.title}</h2>")
        self.layout_.addWidget(heading)
        if self.explanation:
            text = QLabel(self.explanation)
            text.setWordWrap(True)
            text.setStyleSheet("color:#555")
            self.layout_.addWidget(text)

    @property
    def project(self):
        return self.window_.project

    def refresh(self) -> None:
        """Called when data is opened or a result changes; panels update what they show."""

    @contextlib.contextmanager
    def resources(self, progress, cancel, *, embedder: bool = True, **settings_changes):
        """Inside a job: the keyword arguments every workflow takes (the project's settings with the resolved
        description mode, the session's models, a store opened in this worker thread, progress and cancel)."""
        from scelmo_desktop.app.session import open_store

        project, session = self.project, self.window_.session
        choice = project.model_choice()
        settings = project.pipeline_settings(session.resolved_mode(choice)).replace(**settings_changes)
        with open_store() as store:
            yield {
                "settings": settings,
                # explaining names needs the LLM even where genes are described from their fact sheets alone
                "llm": session.explainer(choice) if settings.naming_llm != "off" else session.llm_source(choice),
                "embedder": session.embedder(choice) if embedder else None,
                "store": store,
                "progress": progress,
                "cancel": cancel,
            }

    def add_settings(self, names: list[str], form: QFormLayout | None = None):
        """Editors for these declared settings, bound to the open project's settings, added to ``form`` (or
        the panel); reloaded by :meth:`load_settings`."""
        from scelmo_desktop.gui.settings_form import SettingsForm

        editors = SettingsForm(lambda: self.project.settings, names)
        self.setting_forms.append(editors)
        if form is not None:
            form.addRow(editors)
        else:
            self.layout_.addWidget(editors)
        return editors

    def load_settings(self) -> None:
        """Show the project's settings again (a project was opened)."""
        for editors in self.setting_forms:
            editors.load()

    def form(self, title: str, *, collapsible: bool = False) -> QFormLayout:
        """A titled group of settings; ``collapsible``: its title is a check box that shows or hides them, so a
        result below can take the panel's height."""
        box = QGroupBox(title)
        form = QFormLayout(box)
        self.layout_.addWidget(box)
        if collapsible:
            box.setCheckable(True)
            box.setChecked(True)
            box.toggled.connect(lambda shown: _show_children(box, shown))
        return form


def _show_children(box: QGroupBox, shown: bool) -> None:
    for child in box.findChildren(QWidget, options=Qt.FindDirectChildrenOnly):
        child.setVisible(shown)
    box.setFlat(not shown)
    box.setMaximumHeight(16777215 if shown else box.fontMetrics().height() * 2)  # Qt's "no limit" when shown


def obs_combo(adata, *, allow_none: bool = False, prefer: str | None = None) -> QComboBox:
    combo = QComboBox()
    fill_obs_combo(combo, adata, allow_none=allow_none, prefer=prefer)
    return combo


def fill_obs_combo(combo: QComboBox, adata, *, allow_none: bool = False, prefer: str | None = None) -> None:
    current = combo.currentText()
    combo.clear()
    if allow_none:
        combo.addItem("(none)")
    if adata is not None:
        combo.addItems([str(c) for c in adata.obs.columns])
    for choice in (prefer, current):  # an explicit preference wins over what was shown before
        if choice and combo.findText(choice) >= 0:
            combo.setCurrentText(choice)
            break


def combo_value(combo: QComboBox) -> str | None:
    text = combo.currentText()
    return None if text in ("", "(none)") else text


def path_field(placeholder: str, on_browse) -> tuple[QLineEdit, QHBoxLayout]:
    """A file path a user types or picks with "Browse…": the line edit and the row holding both."""
    field = QLineEdit()
    field.setPlaceholderText(placeholder)
    browse = QPushButton("Browse…")
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(browse)
    return field, row
