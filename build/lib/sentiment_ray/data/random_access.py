"""Review files that need random access, read whole: Parquet and `.xlsx` (see `formats.py` for the contract)."""

from __future__ import annotations

import io
from collections.abc import Iterator

from sentiment_ray.data.records import ParsedFile, Record, make_record, refuse_duplicate_columns
from sentiment_ray.errors import DataError


def parquet_row_count(data: bytes, name: str) -> int:
    return _open_parquet(data, name).metadata.num_rows


def _open_parquet(data: bytes, name: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(pa.BufferReader(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... depending on the damage
        raise DataError(f"{name}: cannot be read as Parquet ({exc})") from None


def parquet_file(data: bytes, name: str) -> ParsedFile:
    parquet = _open_parquet(data, name)
    columns = list(parquet.schema_arrow.names)
    refuse_duplicate_columns(columns, name)

    def records() -> Iterator[Record]:
        number = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for values in batch.to_pylist():
                number += 1
                yield make_record(number, None, values)

    return ParsedFile(name, "parquet", None, None, columns, records())


def sheet_rows(data: bytes, name: str, sheet: str | None) -> Iterator[tuple[int, list]]:
    """(sheet row number, cells) of every non-empty row, the header first."""
    import python_calamine

    try:
        workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises its own errors for damaged or foreign files
        raise DataError(f"{name}: cannot be read as an .xlsx workbook ({exc})") from None
    if sheet is not None and sheet not in workbook.sheet_names:
        raise DataError(f"{name}: no sheet {sheet!r}; sheets: {', '.join(workbook.sheet_names)} (see --sheet)")
    chosen = workbook.get_sheet_by_name(sheet) if sheet is not None else workbook.get_sheet_by_index(0)
    for number, cells in enumerate(chosen.to_python(skip_empty_area=False), start=1):
        if any(c not in (None, "") and not (isinstance(c, str) and not c.strip()) for c in cells):
            yield number, cells


def xlsx_file(data: bytes, name: str, sheet: str | None) -> ParsedFile:
    rows = sheet_rows(data, name, sheet)
    first = next(rows, None)
    header = [str(c).strip() for c in first[1]] if first else []
    while header and not header[-1]:  # trailing empty header cells: columns the sheet does not use
        header.pop()
    refuse_duplicate_columns(header, name)

    def records() -> Iterator[Record]:
        for number, (row, cells) in enumerate(rows, start=1):
            values = {h: _cell(c) for h, c in zip(header, cells, strict=False)}
            yield make_record(number, row, values)

    return ParsedFile(name, "xlsx", None, None, header, records())


def _cell(value):
    """Sheet numbers arrive as floats: a whole number is an int (label 1.0 → 1, id 7.0 → 7); empty is None."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None if value == "" else value
