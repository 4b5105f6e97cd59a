"""A Ray Data datasource for review files that never drops a row and never stops on a bad one.

Ray's own CSV/JSON readers fail a whole read on one malformed row or one invalid UTF-8 byte; a
scoring job must instead keep that row and say what is wrong with it. This datasource streams each
file (CSV, TSV, JSONL, Parquet) in blocks of `BLOCK_ROWS` rows and yields, per input row:

    <original columns>   CSV/TSV/JSONL values as strings (JSON-encoded when not a string); Parquet as typed
    id                   the id column's value (`--id-column`, else a column named `id`), else the
                         0-based row number within its file
    source_file          the file the row came from
    source_row           0-based data row number in that file (header and blank lines not counted)
    row_key              "<source_file>#<source_row>": unique, used by resumable writes
    read_error           None, or why this row could not be read (it is still emitted)
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pandas as pd
from ray.data.datasource import FileBasedDatasource

BLOCK_ROWS = 1024
EXTENSIONS = ["csv", "tsv", "jsonl", "json", "parquet"]
META_COLUMNS = ["id", "source_file", "source_row", "row_key", "read_error"]


class ReviewFileDatasource(FileBasedDatasource):
    _FILE_EXTENSIONS = EXTENSIONS

    def __init__(self, paths, *, text_column: str, id_column: str | None = None, **kwargs):
        super().__init__(paths, file_extensions=EXTENSIONS, **kwargs)
        self.text_column, self.id_column = text_column, id_column

    def _read_stream(self, f, path: str) -> Iterator:
        kind = path.rsplit(".", 1)[-1].lower()
        if kind == "parquet":
            rows = _parquet_rows(self._random_access(f, path))
        elif kind in ("jsonl", "json"):
            rows = _json_rows(f)  # raw JSON values: _row checks the text's type, then stringifies
        else:
            rows = _csv_rows(f, "\t" if kind == "tsv" else ",")
        block: list[dict] = []
        for number, (values, problem) in enumerate(rows):
            block.append(self._row(values, problem, path, number, stringify=kind in ("jsonl", "json")))
            if len(block) == BLOCK_ROWS:
                yield _arrow_block(block)
                block = []
        if block:
            yield _arrow_block(block)

    @staticmethod
    def _random_access(f, path: str):
        """Parquet needs seeks, which Ray's input stream cannot do: buffer the file (one file per read task;
        a large table should be several Parquet files, as Parquet writers usually produce)."""
        import pyarrow as pa

        return pa.BufferReader(f.read())

    def _row(self, values: dict, problem: str | None, path: str, number: int, stringify: bool = False) -> dict:
        text = values.get(self.text_column)
        if problem is None and self.text_column not in values:
            problem = f"no column '{self.text_column}' (columns: {', '.join(values) or 'none'}; see --text-column)"
        elif problem is None and text is not None and not isinstance(text, str):
            problem = f"text is not a string (got {type(text).__name__})"
        if stringify:  # JSON values of any type become str/None: one column type in every block
            values = {k: _text(v) for k, v in values.items()}
        if problem is None and self.id_column and values.get(self.id_column) in (None, ""):
            problem = f"id column '{self.id_column}' is empty"
        row_id = values.get(self.id_column or "id")  # an `id` column is the id unless another is named
        return {
            **values,
            "id": str(row_id) if row_id not in (None, "") else str(number),
            "source_file": path,
            "source_row": number,
            "row_key": f"{path}#{number}",
            "read_error": problem,
        }


def _arrow_block(rows: list[dict]):
    """Arrow, not pandas: Ray Data's resumable-write filter only accepts Arrow blocks from the read."""
    import pyarrow as pa

    return pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)


def _text(value) -> str | None:
    """Strings stay, null stays null, anything else is JSON-encoded (one column type for every block)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _undecodable(values: dict) -> str | None:
    for name, value in values.items():
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            return f"column '{name}' holds bytes that are not valid UTF-8"
    return None


def _clean_undecodable(values: dict) -> dict:
    """Replace lone surrogates (undecodable bytes) so the row can still be written as UTF-8."""
    return {
        k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if isinstance(v, str) else v
        for k, v in values.items()
    }


def _csv_rows(f, delimiter: str) -> Iterator[tuple[dict, str | None]]:
    # surrogateescape: an invalid byte becomes a marker we can report per row instead of failing the file.
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    for fields in reader:
        if not any(field.strip() for field in fields):
            continue  # a blank line is not a row
        values = dict(zip(header, fields, strict=False))
        problem = None
        if len(fields) != len(header):
            problem = f"row has {len(fields)} fields but the header has {len(header)}"
            values = {name: None for name in header}
        problem = problem or _undecodable(values)
        yield (_clean_undecodable(values), problem)


def _binary_lines(f, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a pyarrow stream (which cannot be iterated), read in 1 MiB chunks: constant memory."""
    pending = b""
    while chunk := f.read(chunk_bytes):
        *lines, pending = (pending + chunk).split(b"\n")
        yield from lines
    if pending:
        yield pending


def _json_rows(f) -> Iterator[tuple[dict, str | None]]:
    for raw in _binary_lines(f):
        line = raw.strip()
        if not line:
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            yield {}, "line holds bytes that are not valid UTF-8"
            continue
        except json.JSONDecodeError as err:
            yield {}, f"line is not valid JSON ({err.msg} at column {err.colno})"
            continue
        if not isinstance(record, dict):
            yield {}, f"line is a JSON {type(record).__name__}, not an object"
            continue
        yield record, None


def _parquet_rows(f) -> Iterator[tuple[dict, str | None]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(f).iter_batches(batch_size=BLOCK_ROWS):
        for record in batch.to_pylist():
            yield record, None
