"""Click options generated from the flag table (``vx_engine.run_flags``), and the command
line that gives the same options again (the resume command a chunked run prints)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from vx_engine.run_flags import Flag

_SAME: Any = object()


def _parsed(flag: Flag) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, given: Any) -> Any:
        try:
            return flag.value(given)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None

    return callback


def _type(flag: Flag) -> Any:
    if flag.choices:
        return click.Choice(flag.choices)
    if flag.kind is Path:
        return click.Path(path_type=Path, file_okay=not flag.directory)
    return flag.kind


def click_option(flag: Flag, default: Any = _SAME, help: str | None = None) -> Callable:
    """The click option of ``flag`` (its value already the option's: parsed, "none" None);
    ``default``/``help`` override the table's for another command (``bench``)."""
    default = flag.value_default if default is _SAME else default
    settings: dict[str, Any] = {"help": flag.help if help is None else help, "envvar": flag.envvar}
    if flag.kind is bool and "/" not in flag.cli:
        # a lone switch: "--resume" sets True, "--no-audio" sets its option False
        settings.update(flag_value=not default, default=bool(default))
    else:
        show = default not in (None, (), False) and not flag.multiple
        settings.update(default=default, show_default=show, multiple=flag.multiple)
        if flag.kind is not bool:
            settings.update(type=_type(flag), metavar=flag.metavar)
    if flag.parse is not None:
        settings["callback"] = _parsed(flag)
    return click.option(flag.cli, flag.name, **settings)


def with_flags(flags: tuple[Flag, ...]) -> Callable[[Callable], Callable]:
    """A decorator adding every flag's option to a click command, in table order."""

    def decorate(command: Callable) -> Callable:
        for flag in reversed(flags):
            command = click_option(flag)(command)
        return command

    return decorate


def _words(flag: Flag, value: Any) -> list[str]:
    """The command-line words that give ``value`` for ``flag``."""
    if flag.kind is bool:
        spellings = flag.spellings
        if len(spellings) == 2:
            return [spellings[0] if value else spellings[1]]
        return [flag.cli] if value != flag.value_default else []
    values = value if flag.multiple else (value,)
    return [word for one in values for word in (flag.cli, "none" if one is None else str(one))]


def given_command(ctx: click.Context, flags: tuple[Flag, ...], head: list[str]) -> list[str]:
    """``head`` and the flags this invocation gave on its command line, as words."""
    words = list(head)
    for flag in flags:
        if ctx.get_parameter_source(flag.name) is ParameterSource.COMMANDLINE:
            words += _words(flag, ctx.params[flag.name])
    return words
