"""CLI flags generated from the typed options: a flag's name, type, choices, default and help are its field's.

The field `batch_tokens: int | None = None` of `ScoreOptions`, with the attribute docstring under it, becomes
`--batch-tokens INT` whose help is that docstring and the default. A dataclass field's `metadata` may give
`choices`, a `flag` other than `--` + its name (None: no flag), a `separator` (one flag value holding a list), a
`metavar`, or a `shown_default` for the help where None stands for a computed one; a pydantic field
(`ServeConfig`) gives its choices with `Literal`. A list without a separator makes a repeatable flag.

Every generated flag defaults to None, so that a value from a `--config` YAML stays in force unless the flag is
given; the help shows the field's own default. Where the flag's value lands: `args.<dest>` (the field name, or
the `section.field` path of a run-config field).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import dataclass

SCALARS = (int, float, str)


@dataclass(frozen=True)
class OptionField:
    """One option as the CLI sees it, whichever kind of class defines it."""

    name: str
    hint: object
    default: object
    doc: str
    metadata: typing.Mapping

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def choices(values) -> dict:
    """Field metadata restricting a string option to `values` (its flag gets them as argparse choices)."""
    return {"choices": tuple(values)}


@functools.cache
def option_fields(cls) -> dict[str, OptionField]:
    """{name: OptionField} of a dataclass (attribute docstrings as help) or a pydantic model (descriptions)."""
    if dataclasses.is_dataclass(cls):
        hints, docs = typing.get_type_hints(cls), attribute_docstrings(cls)
        return {
            f.name: OptionField(f.name, hints[f.name], _dataclass_default(f), docs.get(f.name, ""), f.metadata)
            for f in dataclasses.fields(cls)
        }
    return {
        name: OptionField(name, f.annotation, dataclasses.MISSING if f.is_required() else f.get_default(
            call_default_factory=True), f.description or "", {})
        for name, f in cls.model_fields.items()
    }  # fmt: skip


def attribute_docstrings(cls: type) -> dict[str, str]:
    """{field: the string literal right below its annotation} for a dataclass defined in source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def _dataclass_default(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def flag_name(option: OptionField) -> str:
    return option.metadata.get("flag", "--" + option.name.replace("_", "-"))


def add_option_flag(parser, option: OptionField, dest: str | None = None, flag: str | None = None, **overrides):
    """`parser.add_argument` for one option; `overrides` replace generated argparse keywords (e.g. `default`)."""
    base, is_list = _base_type(option.hint)
    kwargs: dict = {"dest": dest or option.name, "default": None, "help": _help(option)}
    if base is bool:
        kwargs["action"] = "store_true"
    elif is_list and option.metadata.get("separator"):
        kwargs["type"] = functools.partial(_split, separator=option.metadata["separator"])
        kwargs["metavar"] = option.metadata.get("metavar", "A,B")
    else:
        kwargs["type"] = base
        kwargs["action"] = "append" if is_list else "store"
        values = option.metadata.get("choices") or _literal_choices(option.hint)
        if values:
            kwargs["choices"] = values
        else:  # named after the field, not the dest (which may be a `section.field` path)
            kwargs["metavar"] = option.metadata.get("metavar", option.name.upper())
    kwargs.update(overrides)
    return parser.add_argument(flag or flag_name(option), **kwargs)


def add_option_flags(parser, cls, names=None, exclude=()) -> None:
    """One flag per field of `cls` (or per name in `names`), skipping `exclude` and fields whose `flag` is None."""
    fields = option_fields(cls)
    for name in names or fields:
        if name not in exclude and fields[name].metadata.get("flag", "") is not None:
            add_option_flag(parser, fields[name])


def given(args: argparse.Namespace, cls, names=None, exclude=()) -> dict:
    """{field: value} of the generated flags of `cls` that were given on the command line."""
    values = vars(args)
    return {n: values[n] for n in (names or option_fields(cls)) if n not in exclude and values.get(n) is not None}


def _help(option: OptionField) -> str:
    doc = option.doc.rstrip(".")
    if option.required:
        return f"{doc} (required: here or in --config)".lstrip()
    shown = option.metadata.get("shown_default", option.default)
    if shown is None or shown is False:  # the docstring says what none means
        return doc
    if isinstance(shown, dict):
        shown = ", ".join(f"{key} {value}" for key, value in shown.items())
    elif isinstance(shown, list):
        shown = ",".join(map(str, shown))
    return f"{doc} (default: {shown})".lstrip()


def _base_type(hint) -> tuple[type, bool]:
    """(the scalar type a flag parses, whether the option is a list) of a hint such as `list[str] | None`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    (inner,) = args  # one type besides None: anything richer has no flag
    if typing.get_origin(inner) is list:
        return typing.get_args(inner)[0], True
    if typing.get_origin(inner) is typing.Literal:
        return type(typing.get_args(inner)[0]), False
    if inner is bool or inner in SCALARS:
        return inner, False
    raise TypeError(f"option {hint!r} has no flag type")


def _is_union(hint) -> bool:
    return isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union


def _literal_choices(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:
        return typing.get_args(args[0])
    return None


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]
