"""A Ray Data datasource for review files that never drops a record and never stops on a bad one.

Ray's own CSV/JSON readers fail a whole read on one malformed row or one invalid UTF-8 byte; a scoring job
must instead keep that record and say what is wrong with it. This datasource parses each file with the
same core as training (`sentiment_ray.data.formats`: every format, encoding and quoting rule) and yields
blocks of `BLOCK_ROWS` rows, one per record:

    <original columns>   text formats as strings; JSON and sheet values as strings (JSON-encoded when not
                         text); Parquet as typed
    id                   the id column's value (`--id-column`, else a column named `id`), else source_row
    source_file          the file the record came from
    source_row           1-based position of the record in its file (blank lines are not records)
    source_line          the physical line (sheet row) where the record starts; null for Parquet / JSON arrays
    row_key              "<source_file>#<source_row>": unique, used by resumable writes
    read_error           None, or why this record could not be read (it is still emitted)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
from ray.data.datasource import FileBasedDatasource

from sentiment_ray.data.formats import DEFAULT_READ, FORMATS, ReadOptions, open_records
from sentiment_ray.data.records import Record, invalid_unicode_problem
from sentiment_ray.location import Location

BLOCK_ROWS = 1024
EXTENSIONS = [ext.lstrip(".") for ext in FORMATS]
META_COLUMNS = ["id", "source_file", "source_row", "source_line", "row_key", "read_error"]


class ReviewFileDatasource(FileBasedDatasource):
    _FILE_EXTENSIONS = EXTENSIONS

    def __init__(
        self,
        paths,
        *,
        text_column: str,
        id_column: str | None = None,
        options: ReadOptions = DEFAULT_READ,
        counter=None,
        **kwargs,
    ):
        """`counter`: a RowCounter actor (inference/progress.py) told each file's record count once it is read
        whole, so that the job checks its rows against the records read, with no reading of its own."""
        files = [Location.of(p) for p in ([paths] if isinstance(paths, (str, Location)) else paths)]
        super().__init__([f.text for f in files], file_extensions=EXTENSIONS, **kwargs)
        self.text_column, self.id_column, self.options, self.counter = text_column, id_column, options, counter
        # Ray hands `_read_stream` a URI's path without its scheme (`bucket/key`); rows name the URI as given.
        self.uri_of = {f.text.split("://", 1)[1]: f.text for f in files if f.remote}

    def _read_stream(self, f, path: str) -> Iterator:
        path = self.uri_of.get(path, path)
        parsed = open_records(f, path, self.options)
        stringify = parsed.format != "parquet"  # one column type (str) in every block of a text or sheet file
        block: list[dict] = []
        records = 0
        for record in parsed.records:
            block.append(self._row(record, path, parsed.encoding, stringify))
            records += 1
            if len(block) == BLOCK_ROWS:
                yield _arrow_block(block)
                block = []
        if block:
            yield _arrow_block(block)
        if self.counter is not None:  # waited for: the job's check must not run before the count arrives
            import ray

            ray.get(self.counter.file_read.remote(path, records))

    def _row(self, record: Record, path: str, encoding: str | None, stringify: bool) -> dict:
        values = record.values or {}
        problem = self._problem(record, values, encoding)  # on the values as parsed: a JSON 42 is no text
        if stringify:
            values = {k: _text(v) for k, v in values.items()}
        row_id = values.get(self.id_column or "id")  # an `id` column is the id unless another is named
        return {
            **values,
            "id": str(row_id) if row_id not in (None, "") else str(record.number),
            "source_file": path,
            "source_row": record.number,
            "source_line": record.line,
            "row_key": f"{path}#{record.number}",
            "read_error": problem,
        }

    def _problem(self, record: Record, values: dict, encoding: str | None) -> str | None:
        if record.problem:
            return record.problem
        text = values.get(self.text_column)
        if self.text_column not in values:
            return f"no column '{self.text_column}' (columns: {', '.join(values) or 'none'}; see --text-column)"
        if text is not None and not isinstance(text, str):
            return f"text is not a string (got {type(text).__name__})"
        unicode_problem = invalid_unicode_problem(record, (self.text_column, self.id_column), encoding)
        if unicode_problem:
            return unicode_problem
        if self.id_column and values.get(self.id_column) in (None, ""):
            return f"id column '{self.id_column}' is empty"
        return None


def _arrow_block(rows: list[dict]):
    """Arrow, not pandas: Ray Data's resumable-write filter only accepts Arrow blocks from the read."""
    import pyarrow as pa

    frame = pd.DataFrame(rows)
    frame["source_line"] = frame["source_line"].astype("Int64")  # all-null in a Parquet block: still an int
    return pa.Table.from_pandas(frame, preserve_index=False)


def _text(value) -> str | None:
    """Strings stay, null stays null, JSON values are JSON-encoded, anything else (a sheet's date) is str()."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
