"""The CLI's flags for the declared settings (``core.settings``): each flag, its type check, default and help
come from the declaration, and the values come back as the settings objects the workflows take."""

from __future__ import annotations

import argparse

from scelmo_desktop.core.settings import ANALYSIS, MODELS, ModelSettings, PipelineSettings, Setting, declared


def _parser_for(setting: Setting):
    """The argparse ``type=``: the declaration's own check, as argparse reports a bad value."""

    def parse(text: str):
        try:
            return setting.check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"the {setting.name} setting ")) from None

    parse.__name__ = setting.name  # argparse names the option in its message
    return parse


def _argparse_safe(setting: Setting) -> Setting:
    """argparse formats help with %: a declared help may say '% mitochondrial'."""
    from dataclasses import replace

    return replace(setting, help=setting.help.replace("%", "%%"))


def _with_default(setting: Setting, task: str | None) -> str:
    value = setting.default_for(task)
    if value is None and setting.none_word is None:
        return setting.help  # nothing set unless given
    return f"{setting.help} (default {setting.none_word if value is None else value})"


def add_setting(parser, setting: Setting, task: str | None) -> None:
    """One declared setting as a flag of ``parser`` (a subcommand, or a group of it)."""
    setting = _argparse_safe(setting)
    flag, dest = setting.flag_for(task), setting.name
    default = setting.default_for(task)
    if setting.type is bool:
        if default:  # a setting on by default is turned off by --no-NAME
            parser.add_argument(
                "--no-" + flag.removeprefix("--"),
                dest=dest,
                action="store_false",
                help=f"do not {setting.help[0].lower()}{setting.help[1:]}",
            )
        else:
            parser.add_argument(flag, dest=dest, action="store_true", help=setting.help)
        parser.set_defaults(**{dest: default})
        return
    if setting.type is list:
        parser.add_argument(
            flag,
            dest=dest,
            action="append",
            default=list(default),
            metavar="VALUE",
            help=setting.help + " (repeatable)",
        )
        return
    parser.add_argument(
        flag,
        dest=dest,
        type=_parser_for(setting),
        default=default,
        choices=setting.choices if setting.none_word is None else None,
        metavar=None if setting.choices else setting.name.upper(),
        help=_with_default(setting, task),
    )


def add_settings(parser, task: str, *, scope: str | None = None, exclude: tuple[str, ...] = ()) -> None:
    """Every setting ``task`` takes (of ``scope``), as flags; model settings in their own help group."""
    models = None
    for setting in declared(scope=scope, task=task):
        if setting.name in exclude or "global" in setting.tasks:
            continue
        target = parser
        if setting.scope == MODELS:
            models = models or parser.add_argument_group("models")
            target = models
        add_setting(target, setting, task)


def add_global_settings(parser) -> None:
    for setting in declared():
        if "global" in setting.tasks:
            add_setting(parser, setting, None)


def _values(args, scope: str) -> dict:
    return {s.name: getattr(args, s.name) for s in declared(scope=scope) if hasattr(args, s.name)}


def pipeline_settings(args, *, mode: str) -> PipelineSettings:
    """The analysis settings a command was given (others keep their declared default)."""
    return PipelineSettings(**_values(args, ANALYSIS), mode=mode)


def model_settings(args) -> ModelSettings:
    """The model settings a command was given."""
    return ModelSettings(**_values(args, MODELS))
