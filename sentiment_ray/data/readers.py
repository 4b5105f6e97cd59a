"""Read review files (CSV, TSV, JSON lines, Parquet) into one normalised DataFrame.

Every reader returns the columns `id`, `text`, `label`, `problem`, `source_row` (see docs/contracts.md).
A row that cannot be used for training is kept and gets a `problem`, so that callers decide what to do with it
(training drops and counts them, scoring writes an error row); a file that cannot be read at all raises DataError.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from sentiment_ray.errors import DataError
from sentiment_ray.labels import is_missing, parse_label

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
OUTPUT_COLUMNS = ("id", "text", "label", "problem", "source_row")
_MAX_REPR = 60  # long bad labels (a whole review in the label column) would flood the report


def read_reviews(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    id_column: str | None = None,
    require_label: bool = False,
) -> pd.DataFrame:
    """Read one review file; the format is chosen by its extension.

    `label_column=None` reads no labels at all (scoring unlabeled data: no row gets a label problem).
    A label column absent from the file gives <NA> labels, or a DataError when `require_label` is set.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise DataError(f"{path}: unsupported file type {ext or '(no extension)'!r}; use one of {SUPPORTED_EXTENSIONS}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    wanted = {name for name in (text_column, label_column, id_column) if name}
    if ext == ".parquet":
        names, columns = _read_parquet(path, wanted)
    else:
        content = _decode(path)
        if not content.strip():
            raise DataError(f"{path}: the file is empty (only whitespace)")
        if ext in (".csv", ".tsv"):
            names, columns = _parse_delimited(content, path, "\t" if ext == ".tsv" else ",", wanted)
        else:
            names, columns = _parse_json_records(content, path, wanted)
    return build_frame(
        names,
        columns,
        origin=str(path),
        text_column=text_column,
        label_column=label_column,
        id_column=id_column,
        require_label=require_label,
    )


def _decode(path: Path) -> str:
    """Decode strictly as UTF-8 (a BOM is allowed) so that a GBK file fails loudly instead of turning into mojibake."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8 (Chinese text is often saved as GBK)"
        ) from None


def _parse_delimited(content: str, path: Path, delimiter: str, wanted: set[str]) -> tuple[list[str], dict]:
    """Parse CSV/TSV with the csv module: every value stays a string, and short or long rows are caught.

    pandas would silently pad short rows with NaN and turn ids like "007" or labels like "1" into numbers.
    """
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    try:
        for record in reader:
            if not record:  # blank line: not a row (pandas skips them too)
                continue
            if header is None:
                header = record
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{path}: row {len(rows) + 1} (line {reader.line_num}) has {len(record)} fields but the header "
                    f"has {len(header)} ({', '.join(header)}); check the delimiter and quoting"
                )
            rows.append(record)
    except csv.Error as exc:
        raise DataError(f"{path}: cannot parse line {reader.line_num}: {exc}") from None
    header = header or []
    columns = {}
    for name in wanted & set(header):
        if header.count(name) > 1:
            raise DataError(f"{path}: column {name!r} appears {header.count(name)} times in the header")
        index = header.index(name)
        columns[name] = [row[index] for row in rows]
    return header, columns


def _parse_json_records(content: str, path: Path, wanted: set[str]) -> tuple[list[str], dict]:
    """JSON lines (one object per line); a .json file holding one array of objects is accepted as well."""
    if content.lstrip().startswith("["):
        try:
            records = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {exc.lineno} is not valid JSON ({exc.msg}, column {exc.colno})") from None
        numbered = list(enumerate(records, start=1))
        where = "item"
    else:
        numbered = []
        # split("\n") rather than splitlines(): JSON strings may legally hold U+2028 and friends unescaped.
        for number, line in enumerate(content.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}, column {exc.colno})") from None
        where = "line"
    names: dict[str, None] = {}  # ordered set: columns in order of first appearance
    for number, record in numbered:
        if not isinstance(record, dict):
            raise DataError(f"{path}: {where} {number} is a JSON {type(record).__name__}, expected an object")
        names.update(dict.fromkeys(record))
    columns = {name: [record.get(name) for _, record in numbered] for name in wanted & names.keys()}
    return list(names), columns


def _read_parquet(path: Path, wanted: set[str]) -> tuple[list[str], dict]:
    """Convert through Python lists: pandas would turn an int column with nulls into floats (id 7 -> "7.0")."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... depending on the damage
        raise DataError(f"{path}: cannot be read as Parquet ({exc})") from None
    names = list(table.column_names)
    return names, {name: table.column(name).to_pylist() for name in wanted & set(names)}


def build_frame(
    names: Sequence[str],
    columns: Mapping[str, Sequence],
    *,
    origin: str,
    text_column: str = "text",
    label_column: str | None = "label",
    id_column: str | None = None,
    require_label: bool = False,
) -> pd.DataFrame:
    """Normalise raw columns (any source: file, Hub split) into the review-record DataFrame.

    `names` are all the columns the source has (for messages); `columns` must hold at least the requested ones.
    """
    _require_column(names, text_column, origin, "text", "--text-column")
    if id_column is not None:
        _require_column(names, id_column, origin, "id", "--id-column")
    has_labels = label_column is not None and label_column in names
    if require_label and not has_labels:
        _require_column(names, label_column or "label", origin, "label", "--label-column")
    texts = columns[text_column]
    if len(texts) == 0:
        raise DataError(f"{origin}: no data rows")
    ids = [str(i) for i in range(len(texts))] if id_column is None else [_id_str(v) for v in columns[id_column]]
    raw_labels = columns[label_column] if has_labels else [None] * len(texts)
    out_texts, labels, problems = [], [], []
    for text, raw_label in zip(texts, raw_labels, strict=True):
        text_ok = isinstance(text, str)
        label, label_problem = _label_or_problem(raw_label) if has_labels else (None, None)
        out_texts.append(text if text_ok else None)
        labels.append(label)
        problems.append(_text_problem(text) or label_problem)
    frame = pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=object),
            "text": pd.Series(out_texts, dtype=object),
            "label": pd.array(labels, dtype="Int64"),
            "problem": pd.Series(problems, dtype=object),
            "source_row": pd.Series(range(1, len(texts) + 1), dtype="int64"),
        }
    )
    frame.attrs["origin"] = origin
    return frame


def _require_column(names: Sequence[str], column: str, origin: str, role: str, flag: str) -> None:
    if column not in names:
        available = ", ".join(repr(n) for n in names) or "(none)"
        raise DataError(
            f"{origin}: no {role} column {column!r}; available columns: {available}. Choose one with {flag}."
        )


def _id_str(value: object) -> str | None:
    # Ids are kept as given (as strings); a missing id stays missing rather than becoming "None" or "nan".
    return None if is_missing(value) else str(value)


def _text_problem(text: object) -> str | None:
    if text is None or (not isinstance(text, str) and is_missing(text)):
        return "empty text"
    if not isinstance(text, str):
        return "text is not a string"
    return "empty text" if not text.strip() else None


def _label_or_problem(raw: object) -> tuple[int | None, str | None]:
    try:
        label = parse_label(raw)
    except ValueError:
        shown = repr(raw)
        shown = shown if len(shown) <= _MAX_REPR else shown[: _MAX_REPR - 3] + "..."
        return None, f"unknown label {shown}"
    return label, ("missing label" if label is None else None)
