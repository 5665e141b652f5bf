"""The desktop app: Qt panels and workers over ``scelmo_desktop.core`` (no science here)."""
