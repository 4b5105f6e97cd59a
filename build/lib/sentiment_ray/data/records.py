"""The record model every file format produces: one `Record` per record of a file, its values cleaned of
lone surrogates, and the checks all formats share (duplicate column names, invalid Unicode)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sentiment_ray.errors import DataError


@dataclass
class Record:
    number: int
    """1-based position among the file's records (blank lines are not records)."""
    line: int | None
    """Physical line (sheet row) where the record starts; None for Parquet and JSON arrays."""
    values: dict | None
    """Column name → value (str for text formats); None when the record could not be parsed."""
    problem: str | None = None
    invalid_unicode: tuple[str, ...] = ()
    """Columns whose text held undecodable bytes or lone surrogates (replaced by U+FFFD in `values`)."""


@dataclass
class ParsedFile:
    name: str
    format: str
    encoding: str | None
    quoting: str | None
    columns: list[str]
    """The header; for JSON the keys seen in the records read so far."""
    records: Iterator[Record] = field(repr=False)


def refuse_duplicate_columns(header: list[str], name: str) -> None:
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        where = "; ".join(f"{c!r} at columns {[i + 1 for i, h in enumerate(header) if h == c]}" for c in repeated)
        raise DataError(f"{name}: the header names a column more than once ({where}); rename them so each is unique")


def invalid_unicode_problem(record: Record, columns, encoding: str | None) -> str | None:
    """The problem of a record whose text in one of `columns` held undecodable bytes or a lone surrogate."""
    broken = [c for c in columns if c and c in record.invalid_unicode]
    if not broken:
        return None
    source = f"bytes that are not valid {encoding}" if encoding else "characters that are not valid Unicode"
    return f"column {broken[0]!r} holds {source} (or a lone surrogate such as \\ud800)"


def clean_unicode(values: dict) -> tuple[dict, tuple[str, ...]]:
    """Replace lone surrogates (undecodable bytes kept by `surrogateescape`, or JSON's "\\ud800") with U+FFFD."""
    bad = tuple(k for k, v in values.items() if isinstance(v, str) and _has_surrogate(v))
    if not bad:
        return values, ()
    cleaned = {k: (_replace_surrogates(v) if k in bad else v) for k, v in values.items()}
    return cleaned, bad


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def make_record(number: int, line: int | None, values: dict | None, problem: str | None = None) -> Record:
    if values is None:
        return Record(number, line, None, problem)
    cleaned, bad = clean_unicode(values)
    return Record(number, line, cleaned, problem, bad)
