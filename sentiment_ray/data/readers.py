"""Read one review file (any format of `formats.FORMATS`) into the review-record DataFrame, for training and evaluation.

Every reader returns the columns `id`, `text`, `label` (class id), `label_value` (the value in the file),
`problem`, `source_row`, `source_line` (see docs/contracts.md). A record that cannot be used for training is kept
and gets a `problem`, so that callers decide what to do with it (training drops and counts it); a file that cannot
be read at all raises DataError. `frame.attrs["file"]` says how the file was read (format, encoding, quoting) and
how many records it holds, counted apart from the parser; the two counts must agree, or nothing is returned.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from sentiment_ray.data.formats import DEFAULT_READ, FORMATS, ReadOptions, count_records, open_records
from sentiment_ray.data.records import invalid_unicode_problem
from sentiment_ray.errors import DataError
from sentiment_ray.labels import LabelSet, is_missing, parse_label

SUPPORTED_EXTENSIONS = tuple(FORMATS)
OUTPUT_COLUMNS = ("id", "text", "label", "label_value", "problem", "source_row", "source_line")
_MAX_REPR = 60  # long bad labels (a whole review in the label column) would flood the report
# A line break inside a text followed by what looks like the start of another record (`\n1\t`, `\n负面,`):
# the sign of a quote that swallowed the lines after it.
_RECORD_AFTER_BREAK = re.compile(r"[\r\n][^\S\r\n]*(?:[01]|正面|负面|积极|消极|pos|neg|positive|negative)[\t,]", re.I)
MAX_EXAMPLES = 5


def read_reviews(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    id_column: str | None = None,
    require_label: bool = False,
    options: ReadOptions = DEFAULT_READ,
    labels: LabelSet | str | None = None,
) -> pd.DataFrame:
    """Read one review file; the format is chosen by its extension.

    `label_column=None` reads no labels at all (scoring unlabeled data: no row gets a label problem).
    A label column absent from the file gives <NA> labels, or a DataError when `require_label` is set.
    `labels`: the classes values are read as (None: binary sentiment), or "raw" to leave them unread until the
    classes are known (`apply_labels`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    with path.open("rb") as stream:
        parsed = open_records(stream, str(path), options)
        records = list(parsed.records)
    with path.open("rb") as stream:
        counted = count_records(stream, str(path), options)
    if counted != len(records):  # a parser bug, never a property of the file: refuse rather than lose rows
        raise DataError(f"{path}: the parser found {len(records)} records but the file holds {counted}; please report")
    if not records:
        raise DataError(f"{path}: no records (the file holds only a header or blank lines)")
    names = parsed.columns or list(dict.fromkeys(k for r in records if r.values for k in r.values))
    wanted = [c for c in dict.fromkeys((text_column, label_column, id_column)) if c]
    columns = {c: [r.values.get(c) if r.values else None for r in records] for c in wanted if c in names}
    frame = build_frame(
        names,
        columns,
        origin=str(path),
        text_column=text_column,
        label_column=label_column,
        id_column=id_column,
        require_label=require_label,
        labels=labels,
        record_problems=[_record_problem(r, text_column, label_column, id_column, parsed.encoding) for r in records],
        source_rows=[r.number for r in records],
        source_lines=[r.line for r in records],
    )
    frame.attrs["file"] = {
        "path": str(path),
        "format": parsed.format,
        "encoding": parsed.encoding,
        "quoting": parsed.quoting,
        "records": counted,
        "line_breaks_before_a_record": _suspicious_breaks(frame),
    }
    return frame


def _record_problem(record, text_column, label_column, id_column, encoding) -> str | None:
    return record.problem or invalid_unicode_problem(record, (text_column, label_column, id_column), encoding)


def _suspicious_breaks(frame: pd.DataFrame) -> dict:
    hits = [
        (int(row), text)
        for row, text in zip(frame["source_row"], frame["text"], strict=True)
        if isinstance(text, str) and _RECORD_AFTER_BREAK.search(text)
    ]
    return {
        "count": len(hits),
        "examples": [{"source_row": row, "text_start": text[:80]} for row, text in hits[:MAX_EXAMPLES]],
        "hint": "a text holds a line break followed by what looks like another record: check the quoting (--quoting)"
        if hits
        else None,
    }


def build_frame(
    names: Sequence[str],
    columns: Mapping[str, Sequence],
    *,
    origin: str,
    text_column: str = "text",
    label_column: str | None = "label",
    id_column: str | None = None,
    require_label: bool = False,
    labels: LabelSet | str | None = None,
    record_problems: Sequence[str | None] | None = None,
    source_rows: Sequence[int] | None = None,
    source_lines: Sequence[int | None] | None = None,
) -> pd.DataFrame:
    """Normalise raw columns (any source: file, Hub split) into the review-record DataFrame.

    `names` are all the columns the source has (for messages); `columns` must hold at least the requested ones.
    `record_problems` are the parser's per-record problems, which win over the text and label checks.
    `labels`: as in `read_reviews`. The label column's values are kept as `label_value` (for `apply_labels`).
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
    rows = list(source_rows) if source_rows is not None else list(range(1, len(texts) + 1))
    # Without an id column a record's id is its position in the file, as in scoring.
    record_ids = [str(r) for r in rows] if id_column is None else [_id_str(v) for v in columns[id_column]]
    raw_labels = columns[label_column] if has_labels else [None] * len(texts)
    parse_problems = record_problems if record_problems is not None else [None] * len(texts)
    out_texts, label_ids, problems = [], [], []
    for text, raw_label, parse_problem in zip(texts, raw_labels, parse_problems, strict=True):
        text_ok = isinstance(text, str) and parse_problem is None
        label, label_problem = _label_or_problem(raw_label, labels) if has_labels else (None, None)
        out_texts.append(text if text_ok else None)
        label_ids.append(label if parse_problem is None else None)
        problems.append(parse_problem or _text_problem(text) or label_problem)
    frame = pd.DataFrame(
        {
            "id": pd.Series(record_ids, dtype=object),
            "text": pd.Series(out_texts, dtype=object),
            "label": pd.array(label_ids, dtype="Int64"),
            "label_value": pd.Series(list(raw_labels), dtype=object),
            "problem": pd.Series(problems, dtype=object),
            "source_row": pd.Series(rows, dtype="int64"),
            "source_line": pd.array(list(source_lines) if source_lines else [None] * len(texts), dtype="Int64"),
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


def _label_or_problem(raw: object, labels: LabelSet | str | None) -> tuple[int | None, str | None]:
    """(class id, None), or (None, why the value is no label). "raw": only a missing value is a problem yet."""
    if labels == "raw":
        return None, ("missing label" if _missing_label(raw) else None)
    try:
        label = parse_label(raw) if labels is None else labels.id_of(raw)
    except ValueError:
        shown = repr(raw)
        shown = shown if len(shown) <= _MAX_REPR else shown[: _MAX_REPR - 3] + "..."
        return None, f"unknown label {shown}"
    return label, ("missing label" if label is None else None)


def _missing_label(raw: object) -> bool:
    return is_missing(raw) or (isinstance(raw, str) and not raw.strip())


def apply_labels(frame: pd.DataFrame, labels: LabelSet) -> pd.DataFrame:
    """A frame read with labels="raw", its `label_value`s read as `labels`' classes: ids, or an unknown-label
    problem for a value that names no class (the row is kept and counted, never guessed)."""
    out = frame.copy()
    ids, problems = [], []
    for value, problem in zip(frame["label_value"], frame["problem"], strict=True):
        label, label_problem = _label_or_problem(value, labels) if problem is None else (None, None)
        ids.append(label)
        problems.append(problem or label_problem)
    out["label"] = pd.array(ids, dtype="Int64")
    out["problem"] = pd.Series(problems, dtype=object, index=frame.index)
    return out
