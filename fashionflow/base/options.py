"""Settings dataclasses whose fields carry their help and rules: command-line flags and checks are made from them.

A setting is declared once, as a field:

    batch_size: int = option(2, "clips per process per step (default: {default}, as the authors)", low=1)

and from that one line come its flag (`--batch-size`, with its help, default, choices and type),
its environment variable where it has one (the web app's launcher), and its check, which the
library runs on every settings object it is given (naming `batch_size`) and the command line on
what was typed (naming `--batch-size`). So the command line's defaults are the library's.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .environment import NumberRefused, describe_whole_numbers, truth, whole_number
from .errors import SettingsError

OPTION = "fashionflow.option"


@dataclass(frozen=True)
class Option:
    """What a setting's field says about it besides its default."""

    help: str
    flag: str | None = None  # default: --field-name
    short: str | None = None  # "-o"
    positional: bool = False
    required: bool = False  # a flag that must be given (positional settings always are)
    choices: tuple | None = None
    low: float | None = None  # numbers: the smallest allowed
    high: float | None = None
    even: bool = False
    positive: bool = False  # numbers: greater than 0
    each: bool = False  # the rule applies to every value of a tuple
    metavar: str | None = None
    nargs: str | None = None  # "+": several values after the flag
    comma_list: bool = False  # "1,1,2,4" (or "80x64") -> (1, 1, 2, 4)
    off_flag: str | None = None  # a setting on by default, turned off by this flag ("--no-tiny-decoder")
    on_and_off: bool = False  # both --x and --no-x
    none_word: str | None = None  # the word that means None on the command line ("none")
    env: tuple[str, ...] = ()  # environment variables that set it (the first one set wins)
    cli: bool = True  # False: a setting of the library that has no flag

    def rule(self) -> str | None:
        """The rule in words, when there is one: "a whole number from 1 to 1000", "a positive number"."""
        if self.low is not None or self.high is not None or self.even:
            return describe_whole_numbers(self.low, self.high, self.even)
        if self.positive:
            return "a positive number"
        return None


def option(default: Any = dataclasses.MISSING, help: str = "", **rules: Any) -> Any:
    """A settings field: its default (absent: the setting must be given), its help and its rules (see `Option`)."""
    if isinstance(rules.get("env"), str):
        rules["env"] = (rules["env"],)
    return dataclasses.field(default=default, metadata={OPTION: Option(help, **rules)})


def options_of(settings_class: type) -> list[tuple[dataclasses.Field, Option]]:
    return [(f, f.metadata[OPTION]) for f in dataclasses.fields(settings_class) if OPTION in f.metadata]


def flag_of(field: dataclasses.Field, opt: Option) -> str:
    if opt.positional:
        return field.name.upper()
    return opt.flag or "--" + field.name.replace("_", "-")


def flags_of(*settings_classes: type) -> dict[str, str]:
    """setting -> flag, for wording errors the way the command line's reader typed them."""
    flags: dict[str, str] = {}
    for cls in settings_classes:
        for field, opt in options_of(cls):
            if opt.cli:
                if flags.get(field.name, flag_of(field, opt)) != flag_of(field, opt):
                    raise ValueError(f"Two settings of one command are named {field.name!r}.")
                flags[field.name] = flag_of(field, opt)
    return flags


# the command line ---------------------------------------------------------------------------------------------


def add_arguments(
    parser: argparse.ArgumentParser,
    settings_class: type,
    *,
    defaults: Mapping[str, Any] | None = None,
    check_on_parse: bool = False,
    only: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    show_env: bool = False,
) -> None:
    """Add a flag for every setting of `settings_class` that has one (to a parser or an argument group).

    `defaults` replaces the dataclass's defaults (the app's launcher: from environment variables).
    `check_on_parse`: numbers out of their range are refused while parsing, by argparse, naming the
    flag; otherwise they are parsed as numbers and `check` refuses them afterwards.
    `only` / `exclude`: the settings to add (a section of `--help` gets its own call).
    `show_env`: each help names the setting's environment variables.
    """
    hints = typing.get_type_hints(settings_class)
    for field, opt in options_of(settings_class):
        if not opt.cli or field.name in exclude or (only is not None and field.name not in only):
            continue
        default = (defaults or {}).get(field.name, _default_of(field))
        parser.add_argument(
            *_names(field, opt), **_argument(field, opt, hints[field.name], default, check_on_parse, show_env)
        )


def add_subcommand(
    commands, name: str, run: Callable, *settings_classes: type, help: str, check_on_parse: bool = False
) -> argparse.ArgumentParser:
    """The subcommand `name`, whose flags are the settings of `settings_classes` and whose description is
    the first one's (`described`); the parsed arguments carry `run` (what it runs) and `flags` (for
    wording errors)."""
    description = described(settings_classes[0]) if settings_classes else None
    parser = commands.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for settings_class in settings_classes:
        add_arguments(parser, settings_class, check_on_parse=check_on_parse)
    parser.set_defaults(run=run, flags=flags_of(*settings_classes))
    return parser


def described(settings_class: type) -> str:
    """A command's description for `--help`: the first paragraph of its settings class's docstring."""
    return inspect.cleandoc(settings_class.__doc__ or "").split("\n\n")[0]


def from_arguments(settings_class: type, args: argparse.Namespace, **extra: Any):
    """The settings object of what was typed (`extra`: settings that do not come from flags)."""
    hints = typing.get_type_hints(settings_class)
    values = dict(extra)
    for field, opt in options_of(settings_class):
        if opt.cli and hasattr(args, field.name) and field.name not in values:
            value = getattr(args, field.name)
            if isinstance(value, list) and _is_tuple(hints[field.name]):
                value = tuple(value)
            values[field.name] = value
    return settings_class(**values)


def _names(field: dataclasses.Field, opt: Option) -> list[str]:
    if opt.positional:
        return [field.name]
    if opt.off_flag:
        return [opt.off_flag]
    return [n for n in (opt.short, flag_of(field, opt)) if n]


def _argument(field, opt: Option, hint, default, check_on_parse: bool, show_env: bool) -> dict:
    value_type, _ = _value_type(hint)
    help_text = opt.help.replace("{default}", _shown(default))
    if show_env and opt.env:
        help_text += f" [{', '.join(opt.env)}]"
    argument: dict[str, Any] = {"help": help_text}
    if not opt.positional:
        argument["dest"] = field.name
    if value_type is bool:
        if opt.on_and_off:
            argument.update(action=argparse.BooleanOptionalAction, default=default)
        elif opt.off_flag:
            argument.update(action="store_false", default=default)
        else:
            argument.update(action="store_true", default=default)
        return argument
    if opt.positional:
        pass
    elif default is dataclasses.MISSING or opt.required:
        argument["required"] = True
    else:
        argument["default"] = default
    if opt.nargs:
        argument["nargs"] = opt.nargs
    if opt.metavar:
        argument["metavar"] = opt.metavar
    if opt.choices is not None and opt.none_word is None:
        argument["choices"] = list(opt.choices)
    elif opt.choices is not None:  # argparse checks choices after `type`, which turns the word into None
        argument.setdefault("metavar", "{" + ",".join([*opt.choices, opt.none_word]) + "}")
    argument["type"] = _parser(opt, value_type, check_on_parse)
    return argument


def _parser(opt: Option, value_type: type, check_on_parse: bool) -> Callable[[str], Any]:
    """argparse's `type=`: text -> value, with argparse naming the flag when it is refused."""

    def parse(text: str) -> Any:
        if opt.none_word is not None:
            if text == opt.none_word:
                return None
            if opt.choices is not None and text not in opt.choices:
                shown = ", ".join(repr(c) for c in [*opt.choices, opt.none_word])
                raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {shown})")
        if opt.comma_list:
            try:
                return tuple(int(x) for x in text.replace("x", ",").split(",") if x)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if value_type is int:
            rule = (opt.low, opt.high, opt.even) if check_on_parse else (None, None, False)
            try:
                return whole_number(text, "", *rule)
            except NumberRefused:
                raise argparse.ArgumentTypeError(f"must be {describe_whole_numbers(*rule)}; got {text!r}") from None
        if value_type is float:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise argparse.ArgumentTypeError(f"must be a number; got {text!r}")
            return number
        if value_type is Path:
            return Path(text)
        return text

    return parse


# the checks ---------------------------------------------------------------------------------------------------


def check(settings: Any) -> None:
    """Refuse settings that break their fields' rules, with one `SettingsError` naming every one."""
    problems = problems_of(settings)
    if problems:
        template = "; ".join(f"{{{name}}} {problem}" for name, problem in problems) + "."
        raise SettingsError(template, settings={name: None for name, _ in problems})


def problems_of(settings: Any) -> list[tuple[str, str]]:
    """(setting, what is wrong) for each setting that breaks its rule."""
    problems = []
    for field, opt in options_of(type(settings)):
        value = getattr(settings, field.name)
        values = value if opt.each and isinstance(value, (tuple, list)) else (value,)
        for one in values:
            problem = _problem(opt, one)
            if problem:
                problems.append((field.name, problem))
                break
    return problems


def _problem(opt: Option, value: Any) -> str | None:
    if value is None:
        return None
    got = "; got " + repr(value).replace("{", "{{").replace("}", "}}")
    if opt.choices is not None and value not in opt.choices:
        return f"must be one of {', '.join(map(str, opt.choices))}{got}"
    if opt.low is not None or opt.high is not None or opt.even:
        try:
            whole_number(value, "", opt.low, opt.high, opt.even)
        except NumberRefused:
            return f"must be {opt.rule()}{got}"
    if opt.positive and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        return f"must be a positive number{got}"
    return None


# environment variables ----------------------------------------------------------------------------------------


def from_environment(settings_class: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The values the environment variables of `settings_class`'s settings give (the set ones only)."""
    hints = typing.get_type_hints(settings_class)
    values = {}
    for field, opt in options_of(settings_class):
        for name in opt.env:
            text = environ.get(name, "")
            if not text.strip():
                continue
            value_type, _ = _value_type(hints[field.name])
            if value_type is bool:
                values[field.name] = truth(text, name)
            elif value_type is int:
                values[field.name] = whole_number(text, name, opt.low, opt.high, opt.even)
            else:
                values[field.name] = text
            break
    return values


# helpers ------------------------------------------------------------------------------------------------------


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _shown(default: Any) -> str:
    if isinstance(default, (tuple, list)):
        return ",".join(map(str, default))
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _is_tuple(hint) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) is tuple


def _value_type(hint) -> tuple[Any, bool]:
    """(the type a value has, whether None is allowed) of a field's annotation."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        element = typing.get_args(hint)[0]
        return (element if not isinstance(element, type(Ellipsis)) else str), optional
    return hint, optional
