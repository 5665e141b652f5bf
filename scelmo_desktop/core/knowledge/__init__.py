"""Offline knowledge read at run time from installed packages (never copied into this repository)."""
