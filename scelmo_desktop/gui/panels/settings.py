"""Settings: every setting the app shows, in one place, built from the declarations (``core.settings``) with
their defaults, ranges and help; the task panels show the same settings beside their buttons."""

from __future__ import annotations

from PySide6.QtWidgets import QPushButton, QScrollArea, QVBoxLayout, QWidget

from scelmo_desktop.core.settings import ANALYSIS, MODELS, declared
from scelmo_desktop.gui.panels.base import Panel

SCOPE_TITLES = {ANALYSIS: "Analysis", MODELS: "Models"}


class SettingsPanel(Panel):
    title = "Settings"
    explanation = (
        "Every setting of the analysis and the models, with its default. The same values are used by "
        "every panel and saved in the project file; hover over a setting for what it does."
    )

    def __init__(self, window):
        super().__init__(window)
        inner = QWidget()
        column = QVBoxLayout(inner)
        self.forms = {}
        for scope, title in SCOPE_TITLES.items():
            names = [s.name for s in declared(scope=scope) if s.gui]
            box = self.form(title)
            self.forms[scope] = self.add_settings(names, box)
            column.addWidget(box.parentWidget())
        reset = QPushButton("Restore the defaults")
        reset.clicked.connect(self.restore_defaults)
        column.addWidget(reset)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        self.layout_.addWidget(scroll, 1)

    def editor(self, name: str):
        """The editor of one declared setting (tests and the screenshot script drive it)."""
        return next(form.editor(name) for form in self.forms.values() if name in form.editors)

    def restore_defaults(self) -> None:
        for setting in declared():
            if setting.gui:
                setattr(self.project.settings, setting.name, setting.default)
        for panel in self.window_.panels.values():
            panel.load_settings()

    def refresh(self) -> None:
        self.load_settings()  # another panel may have changed a value
