"""The score job's output folder, local or behind a URI (`s3://…`): prepare it, write it, read and count it back.

Everything goes through a pyarrow filesystem, the same one Ray Data writes with, so a local folder and a bucket
behave alike. The resumable-write checkpoint sits beside the output: `<output>.checkpoint/`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from sentiment_ray.errors import DataError
from sentiment_ray.inference.score_options import ScoreOptions
from sentiment_ray.location import Location

log = logging.getLogger("sentiment_ray.score")


def checkpoint_dir(output: Location | str | Path) -> Location:
    """`<output>.checkpoint`, beside the output on its filesystem."""
    return Location.of(output).sibling(".checkpoint")


def _files(location: Location, suffix: str = "") -> list[str]:
    """Visible files directly in `location` (paths inside its filesystem), sorted; [] if it does not exist."""
    import pyarrow.fs

    fs, path = location.filesystem()
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return sorted(
        i.path
        for i in infos
        if i.type == pyarrow.fs.FileType.File and not i.base_name.startswith(".") and i.path.endswith(suffix)
    )


def _remove(location: Location) -> None:
    import pyarrow.fs

    fs, path = location.filesystem()
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def prepare_output(opts: ScoreOptions, output: Location) -> None:
    """Empty `output` (the job's --output) with --overwrite; refuse it when it holds a finished run (no checkpoint)."""
    checkpoint = checkpoint_dir(output)
    if opts.overwrite:
        _remove(output)
        _remove(checkpoint)
    else:
        resumable = checkpoint.kind() != "missing"
        if _files(output) and not resumable:
            raise DataError(
                f"--output {output} already holds a finished run; pass --overwrite or another path "
                f"(an interrupted run leaves {checkpoint}/ and is resumed automatically)"
            )
        if resumable:
            drop_uncommitted(output, checkpoint)


PENDING = ".pending.parquet"
"""Ray Data writes `<block>.pending.parquet` into the checkpoint before it writes the block's data file, and renames it
once the data file is complete: a data file whose checkpoint is still pending may be cut short."""


def drop_uncommitted(output: Location, checkpoint: Location) -> None:
    """Delete the data files an interrupted run left unfinished (their checkpoint is pending: e.g. the disk filled
    up mid-file) and those pending checkpoints. Their rows are not in the checkpoint, so the resumed run writes them
    again; left in place, a cut-off file would be counted (and fail to parse) before the job starts. Ray Data does
    the same cleaning when its job starts, after this driver has counted the rows already written."""
    fs, _ = output.filesystem()
    for marker in _files(checkpoint, PENDING):
        block = marker.rsplit("/", 1)[-1][: -len(PENDING)]
        for data in _files(output):
            if data.rsplit("/", 1)[-1].startswith(block):
                log.warning("removing %s: an interrupted run did not finish it; its rows are scored again", data)
                fs.delete_file(data)
        fs.delete_file(marker)


def write(ds, output: Location, output_format: str) -> None:
    if output_format == "parquet":
        ds.write_parquet(output.text)
    elif output_format == "csv":
        ds.write_csv(output.text)
    else:
        ds.write_json(output.text)


def read_output(output: Location | str | Path, output_format: str = "parquet") -> pd.DataFrame:
    """All written rows as one DataFrame (object columns, None for missing), in input order."""
    output = Location.of(output)
    fs, _ = output.filesystem()
    files = _files(output)
    if not files:
        return pd.DataFrame()
    if output_format == "parquet":  # blocks may differ in inferred types (an all-null column): let arrow unify
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(f, filesystem=fs) for f in files]
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    else:
        frame = pd.concat([_read_text_file(fs, f, output_format).astype(object) for f in files], ignore_index=True)
    frame = frame.astype(object).where(frame.notna(), None)  # missing is None (pandas 3 would show NaN)
    frame["source_row"] = frame["source_row"].astype(int)
    return frame.sort_values(["source_file", "source_row"], kind="stable").reset_index(drop=True)


def _read_text_file(fs, path: str, output_format: str) -> pd.DataFrame:
    with fs.open_input_file(path) as stream:
        if output_format == "csv":
            return pd.read_csv(stream, keep_default_na=False, dtype=str)
        return pd.read_json(stream, lines=True, dtype=False)


def count_errors(output: Location, output_format: str) -> int:
    """Rows written with an `error` (Parquet: reads that one column only)."""
    if output_format != "parquet":
        frame = read_output(output, output_format)
        return int(frame["error"].notna().sum()) if "error" in frame else 0
    import pyarrow.parquet as pq

    fs, _ = output.filesystem()
    errors = 0
    for file in _files(output, ".parquet"):
        column = pq.read_table(file, columns=["error"], filesystem=fs).column("error")
        errors += len(column) - column.null_count
    return errors


def count_rows(output: Location, output_format: str) -> int:
    """Rows written (Parquet: from file metadata, without reading the data)."""
    if output_format != "parquet":
        return len(read_output(output, output_format))
    import pyarrow.parquet as pq

    fs, _ = output.filesystem()
    return sum(pq.read_metadata(file, filesystem=fs).num_rows for file in _files(output, ".parquet"))


def count_kept(output: Location, output_format: str) -> dict:
    """Selective scoring: rows kept, abstained, and the coverage (kept / rows with a prediction)."""
    if output_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        fs, _ = output.filesystem()
        tables = [pq.read_table(f, columns=["abstained"], filesystem=fs) for f in _files(output, ".parquet")]
        flags = pa.concat_tables(tables).column("abstained").to_pylist() if tables else []
    else:
        flags = read_output(output, output_format)["abstained"].tolist()
    flags = [f if isinstance(f, bool) else str(f).lower() == "true" if f not in (None, "") else None for f in flags]
    kept, abstained = sum(f is False for f in flags), sum(f is True for f in flags)
    return {"kept": kept, "abstained": abstained, "coverage": kept / (kept + abstained) if kept + abstained else None}
