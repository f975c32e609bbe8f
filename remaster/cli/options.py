"""Options every command shares, so each is written once.

- `DEVICE`: one device choice for every command.
- `CommaList`: every comma-separated option (`--at 0,120`, `--widths 8,8,16,16`, `--sizes
  640x480,1920x1080`, `--hint X,Y,#RRGGBB`): a malformed list is click's usage error, exit 2.
- `field_options`: the flags of a dataclass's fields, one option per field whose metadata has a
  `help` (`run.config.flag_fields`): the flag, help, choices, type and the default shown in
  `--help` all come from the dataclass. `colorize` takes the run config's sections this way,
  `train` the training and network configs, `bench` its own options and some of the run's,
  `image` the colorizer's model, device and doubt.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click

from remaster.errors import RemasterError

DEVICE = click.Choice(["auto", "cpu", "cuda"])  # one device choice for every command

_COUNTS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_NOUNS = {int: "integers", float: "numbers"}


class CommaList(click.ParamType):
    """A comma-separated list, as a tuple: `item` parses each element (int, float, or a function
    that raises ValueError or a RemasterError), or `items` one element per position. `count` fixes
    the length. A malformed list fails as click's usage error (exit 2), naming the option."""

    name = "list"

    def __init__(self, item=int, *, items=None, count: int | None = None, expect: str = "", example: str = ""):
        self.items = tuple(items) if items else None
        self.item = item
        self.count = len(self.items) if self.items else count
        noun = _NOUNS.get(item, "items")
        self.expect = expect or " ".join(filter(None, [_COUNTS.get(count, ""), "comma-separated", noun]))
        self.example = example
        letter = {int: "N", float: "X"}.get(item, "ITEM")
        self.metavar = expect if self.items else ",".join([letter] * count) if count else f"{letter}[,{letter}...]"

    def get_metavar(self, *args, **kwargs) -> str:
        return self.metavar

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):  # a default, already parsed
            return value
        text = str(value)
        parts = [part.strip() for part in text.split(",")]
        if self.count is None:
            parts = [part for part in parts if part]  # a stray comma is no element
        expected = f"expected {self.expect}{f', e.g. {self.example}' if self.example else ''}, got {text!r}"
        if not parts or (self.count is not None and len(parts) != self.count):
            self.fail(expected, param, ctx)
        parsers = self.items or (self.item,) * len(parts)
        try:
            return tuple(parse(part) for parse, part in zip(parsers, parts))
        except RemasterError as error:  # the element's own reason: 'expected #rrggbb', 'expected even sides'
            self.fail(str(error), param, ctx)
        except ValueError:
            self.fail(expected, param, ctx)


def field_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def field_type(f: dataclasses.Field, default):
    """The click type of a field: its choices, a comma list for a tuple, else from the default or
    the annotation (`int | None`)."""
    annotation = str(f.type)
    if f.metadata.get("choices"):
        return click.Choice(list(f.metadata["choices"]))
    if annotation.startswith("tuple[") or isinstance(default, tuple):
        inner = re.match(r"tuple\[([^\[\],]+)", annotation)
        item = f.metadata.get("parse") or {"int": int, "float": float}.get(inner.group(1) if inner else "", str)
        elements = annotation[len("tuple[") :].split("]")[0].split(",")
        count = None if "..." in annotation else len(elements)
        return CommaList(item, count=count, expect=f.metadata.get("expect", ""), example=f.metadata.get("example", ""))
    if default is not None and type(default) in (int, float):
        return type(default)
    if "Path" in annotation:
        return click.Path(path_type=Path)
    return {"int | None": int, "float | None": float}.get(annotation)


def field_options(rows, *, only: tuple[str, ...] | None = None):
    """A decorator: one click option per `(section, field, flag)` row (`run.config.flag_fields`),
    named `section__field`, default None (so a preset's or the dataclass's value stands: `sections`
    gathers what was given). `only` keeps the fields of those names, in that order."""
    if only is not None:
        by_name = {f.name: (section, f, flag) for section, f, flag in rows}
        rows = [by_name[name] for name in only]

    def decorate(command):
        for section, f, flag in reversed(rows):
            default = field_default(f)
            name = f"{section}__{f.name}"
            if isinstance(default, bool):  # a switch: absent leaves the preset's or dataclass's value
                command = click.option(
                    flag, name, is_flag=True, flag_value=True, default=None, help=f.metadata["help"]
                )(command)
                continue
            shown = "" if default in (None, "") else f" [default: {_shown(default)}]"
            kind = field_type(f, default)
            metavar = f.metadata.get("metavar")
            command = click.option(
                flag, name, default=None, help=f.metadata["help"] + shown, type=kind, metavar=metavar
            )(command)
        return command

    return decorate


def sections(flags: dict) -> dict[str, dict]:
    """`{"train__steps": 5, "net__widths": None}` -> `{"train": {"steps": 5}, "net": {}}`: what was given."""
    given: dict[str, dict] = {}
    for key, value in flags.items():
        section, name = key.split("__", 1)
        given.setdefault(section, {})
        if value is not None:
            given[section][name] = value
    return given
