"""The app's widgets for the declared settings (``core.settings``): each editor's kind, range, choices, default
and tooltip come from the declaration, and every edit goes straight into the project's settings."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from scelmo_desktop.core.settings import Setting, declared

NONE_ITEM = "(none)"
BIGGEST = 1_000_000


class SettingEditor(QWidget):
    """One setting's editor: a combo box, a check box, a number box (with a check box for its ``none_word``) or a
    line of text. ``value()`` and ``set_value()`` speak the setting's own values (``None`` included)."""

    changed = Signal(object)

    def __init__(self, setting: Setting, parent=None):
        super().__init__(parent)
        self.setting = setting
        self.setObjectName(f"setting:{setting.name}")
        self.setToolTip(setting.help[0].upper() + setting.help[1:] + ".")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.none_box = None
        if setting.choices is not None:
            self.editor = QComboBox()
            if setting.optional:
                self.editor.addItem(setting.none_word or NONE_ITEM)
            self.editor.addItems([str(c) for c in setting.choices])
            self.editor.currentTextChanged.connect(self._emit)
        elif setting.type is bool:
            self.editor = QCheckBox()
            self.editor.toggled.connect(self._emit)
        elif setting.type in (int, float):
            self.editor = QSpinBox() if setting.type is int else QDoubleSpinBox()
            if setting.type is float:
                self.editor.setDecimals(3)
                self.editor.setSingleStep(0.05 if (setting.maximum or BIGGEST) <= 10 else 1.0)
            low = setting.minimum if setting.minimum is not None else -BIGGEST
            high = setting.maximum if setting.maximum is not None else BIGGEST
            self.editor.setRange(setting.type(low), setting.type(high))
            self.editor.valueChanged.connect(self._emit)
            if setting.optional:
                self.none_box = QCheckBox(setting.none_word or "none")
                self.none_box.toggled.connect(self._none_toggled)
        else:
            self.editor = QLineEdit()
            self.editor.setPlaceholderText(NONE_ITEM if setting.optional else "")
            self.editor.editingFinished.connect(self._emit)
        self.editor.setToolTip(self.toolTip())
        layout.addWidget(self.editor, 1)
        if self.none_box is not None:
            layout.addWidget(self.none_box)
        self.set_value(setting.default)

    def value(self):
        s = self.setting
        if s.choices is not None:
            text = self.editor.currentText()
            return None if s.optional and text == (s.none_word or NONE_ITEM) else s.type(text)
        if s.type is bool:
            return self.editor.isChecked()
        if s.type in (int, float):
            return None if self.none_box is not None and self.none_box.isChecked() else s.type(self.editor.value())
        text = self.editor.text().strip()
        return (None if s.optional else "") if not text else text

    def set_value(self, value) -> None:
        """Show ``value`` without reporting it as an edit."""
        s = self.setting
        widgets = [self.editor] + ([self.none_box] if self.none_box is not None else [])
        for widget in widgets:
            widget.blockSignals(True)
        try:
            if s.choices is not None:
                self.editor.setCurrentText(s.none_word or NONE_ITEM if value is None else str(value))
            elif s.type is bool:
                self.editor.setChecked(bool(value))
            elif s.type in (int, float):
                if self.none_box is not None:
                    self.none_box.setChecked(value is None)
                    self.editor.setEnabled(value is not None)
                if value is not None:
                    self.editor.setValue(s.type(value))
                elif s.default is not None:
                    self.editor.setValue(s.type(s.default))
                elif s.typical is not None:
                    self.editor.setValue(s.type(s.typical))
            else:
                self.editor.setText("" if value is None else str(value))
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def _none_toggled(self, checked: bool) -> None:
        self.editor.setEnabled(not checked)
        self._emit()

    def _emit(self, *_) -> None:
        self.changed.emit(self.value())


class SettingsForm(QWidget):
    """Rows of :class:`SettingEditor` bound to ``settings`` (an object with the settings as attributes, or a
    function returning the current one, such as the open project's): an edit sets the value there at once, and
    :meth:`load` shows the values there again. ``names``: these settings; else every one ``task`` takes (or
    every declared one) that the app shows."""

    def __init__(self, settings, names: list[str] | None = None, *, task: str | None = None, parent=None):
        super().__init__(parent)
        self._settings = settings if callable(settings) else (lambda: settings)
        chosen = declared(task=task) if names is None else [_by_name(n) for n in names]
        self.editors: dict[str, SettingEditor] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for setting in chosen:
            if names is None and not setting.gui:
                continue
            editor = SettingEditor(setting)
            editor.changed.connect(lambda value, name=setting.name: setattr(self._settings(), name, value))
            self.editors[setting.name] = editor
            layout.addRow(setting.words(), editor)
        self.load()

    def load(self) -> None:
        """Show the bound settings' values again (after a project was opened, or a door changed them)."""
        current = self._settings()
        for name, editor in self.editors.items():
            editor.set_value(getattr(current, name))

    def editor(self, name: str) -> SettingEditor:
        return self.editors[name]


def _by_name(name: str) -> Setting:
    from scelmo_desktop.core.settings import SETTINGS

    return SETTINGS[name]
