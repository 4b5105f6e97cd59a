"""One parsing core per file format, shared by training, evaluation and scoring (docs/data-formats.md).

`open_records` turns a file's bytes into a header and a stream of `Record`s: one per record of the file,
numbered from 1, each with the physical line it starts on where the format has lines. A record that
cannot be parsed is still a `Record`, with `values=None` and a `problem`: callers decide what to do
(training drops and counts it, scoring writes an error row). Only a file that cannot be read at all
raises `DataError`. `count_records` counts the same records by a separate, simpler route, so that every
caller can check that nothing was lost or merged (the conservation contract).

Text is streamed: a file is decoded and split on the fly, so its size does not bound memory. Parquet and
`.xlsx` need random access and are read whole (`random_access.py`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from sentiment_ray.config import QUOTING_CHOICES
from sentiment_ray.data.records import ParsedFile, Record, make_record, refuse_duplicate_columns
from sentiment_ray.data.text_stream import decoded_text, physical_lines, rfc4180_record_count
from sentiment_ray.errors import DataError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",  # Excel's "Unicode text" export: UTF-16, tab-separated
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",  # one JSON array of objects; JSON lines take .jsonl
    ".parquet": "parquet",
    ".xlsx": "xlsx",
}
"""The one extension list: each extension has exactly one meaning, in every path."""
DELIMITERS = {"csv": ",", "tsv": "\t"}
csv.field_size_limit(sys.maxsize)  # a long review is a record, not a parse error (the text limit is the predictor's)


@dataclass(frozen=True)
class ReadOptions:
    encoding: str = "auto"
    """`auto`: the BOM, else UTF-8, else a detector (charset-normalizer); or a codec name such as `gb18030`."""
    quoting: str = field(default="auto", metadata={"choices": QUOTING_CHOICES})
    """`auto`: none for TSV (tab-separated exports do not quote), RFC 4180 for CSV; or `none` / `csv` for both."""
    sheet: str | None = None
    """The `.xlsx` sheet to read (default: the first)."""

    def __post_init__(self):
        if self.quoting not in QUOTING_CHOICES:
            raise DataError(f"quoting {self.quoting!r} is not one of {', '.join(QUOTING_CHOICES)}")


DEFAULT_READ = ReadOptions()


def file_format(name: str) -> str:
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if ext not in FORMATS:
        raise DataError(f"{name}: unsupported file type {ext or '(no extension)'!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[ext]


def effective_quoting(fmt: str, options: ReadOptions) -> str | None:
    if fmt not in DELIMITERS:
        return None
    if options.quoting != "auto":
        return options.quoting
    return "csv" if fmt == "csv" else "none"


def open_records(stream, name: str, options: ReadOptions = DEFAULT_READ) -> ParsedFile:
    """Parse `stream` (binary, with `.read`) as the file `name`; the extension picks the format."""
    from sentiment_ray.data.random_access import parquet_file, xlsx_file

    fmt = file_format(name)
    if fmt == "parquet":
        return parquet_file(stream.read(), name)
    if fmt == "xlsx":
        return xlsx_file(stream.read(), name, options.sheet)
    text, encoding = decoded_text(stream, name, options.encoding)
    if fmt == "jsonl":
        return ParsedFile(name, fmt, encoding, None, [], _jsonl_records(physical_lines(text)))
    if fmt == "json":
        return ParsedFile(name, fmt, encoding, None, [], _json_array_records(text.read(), name))
    quoting = effective_quoting(fmt, options)
    lines = physical_lines(text)
    header, records = _delimited(lines, DELIMITERS[fmt], quoting, name)
    refuse_duplicate_columns(header, name)
    return ParsedFile(name, fmt, encoding, quoting, header, records)


def count_records(stream, name: str, options: ReadOptions = DEFAULT_READ) -> int:
    """How many records `name` holds, counted apart from the parser above (the conservation check's reference).

    TSV, JSON lines and unquoted CSV: non-blank physical lines after the header; quoted CSV: RFC 4180 records
    (a small state machine, not the csv module); Parquet: its metadata; JSON: the array's length; sheets: rows.
    """
    from sentiment_ray.data.random_access import parquet_row_count, sheet_rows

    fmt = file_format(name)
    if fmt == "parquet":
        return parquet_row_count(stream.read(), name)
    if fmt == "xlsx":
        return max(0, sum(1 for _ in sheet_rows(stream.read(), name, options.sheet)) - 1)  # less the header
    text, _ = decoded_text(stream, name, options.encoding)
    if fmt == "json":
        items = _load_json_array(text.read(), name)
        return len(items)
    if fmt == "jsonl":
        return sum(1 for _, line in physical_lines(text) if line.strip())
    delimiter = DELIMITERS[fmt]
    if effective_quoting(fmt, options) == "csv":
        return max(0, rfc4180_record_count(text, delimiter) - 1)  # less the header
    blank = str.maketrans("", "", delimiter)
    return max(0, sum(1 for _, line in physical_lines(text) if line.translate(blank).strip()) - 1)


def _delimited(lines: Iterator[tuple[int, str]], delimiter: str, quoting: str, name: str):
    rows = _csv_rows(lines, delimiter) if quoting == "csv" else _split_rows(lines, delimiter)
    header: list[str] = []
    for line, fields in rows:
        if isinstance(fields, CsvProblem):
            raise DataError(f"{name}: line {line}: the header is {fields}")
        header = [f.strip() for f in fields]
        break
    return header, _delimited_records(rows, header)


def _delimited_records(rows, header: list[str]) -> Iterator[Record]:
    for number, (line, fields) in enumerate(rows, start=1):
        if isinstance(fields, CsvProblem):
            yield make_record(number, line, None, str(fields))
        elif len(fields) != len(header):
            problem = f"record has {len(fields)} fields but the header has {len(header)} ({', '.join(header)})"
            yield make_record(number, line, None, problem)
        else:
            yield make_record(number, line, dict(zip(header, fields, strict=True)))


def _is_blank(fields: list[str]) -> bool:
    return all(not f.strip() for f in fields)


def _split_rows(lines, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """No quoting: each non-blank physical line is one record, split at every delimiter."""
    for number, line in lines:
        fields = line.split(delimiter)
        if not _is_blank(fields):
            yield number, fields


def _csv_rows(lines, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """RFC 4180: quoted fields may hold delimiters, doubled quotes and line breaks. Yields (first line, fields)."""
    first_line: int | None = None

    def with_endings():  # the reader pulls one line at a time, so the first line pulled starts the record
        nonlocal first_line
        for number, line in lines:
            first_line = first_line or number
            yield line + "\n"

    reader = csv.reader(with_endings(), delimiter=delimiter, strict=False)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # e.g. a lone carriage return in an unquoted field: that record alone is bad
            fields = CsvProblem(f"not a valid CSV record ({err})")
        start, first_line = first_line, None
        if isinstance(fields, CsvProblem) or not _is_blank(fields):
            yield start, fields


class CsvProblem(str):
    """Stands for the fields of a record the csv module refused; its text is the record's problem."""


def _jsonl_records(lines) -> Iterator[Record]:
    number = 0
    for line_number, line in lines:
        if not line.strip():
            continue
        number += 1
        values, problem = _json_object(line)
        yield make_record(number, line_number, values, problem)


def _json_object(line: str) -> tuple[dict | None, str | None]:
    try:
        value = json.loads(line, object_pairs_hook=_pairs_without_repeats)
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg} at column {err.colno})"
    except _RepeatedKey as err:
        return None, f"the JSON object names {err.args[0]!r} more than once"
    if not isinstance(value, dict):
        return None, f"a JSON {type(value).__name__}, not an object"
    return value, None


class _RepeatedKey(ValueError):
    pass


def _pairs_without_repeats(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _RepeatedKey(key)
        out[key] = value
    return out


def _load_json_array(content: str, name: str) -> list:
    try:
        value = json.loads(content)
    except json.JSONDecodeError as err:
        raise DataError(f"{name}: line {err.lineno} is not valid JSON ({err.msg}, column {err.colno})") from None
    if not isinstance(value, list):
        raise DataError(
            f"{name}: a .json file must hold one JSON array of objects; JSON lines take the .jsonl extension"
        )
    return value


def _json_array_records(content: str, name: str) -> Iterator[Record]:
    for number, item in enumerate(_load_json_array(content, name), start=1):
        if isinstance(item, dict):
            yield make_record(number, None, item)
        else:
            yield make_record(number, None, None, f"item {number} is a JSON {type(item).__name__}, not an object")
