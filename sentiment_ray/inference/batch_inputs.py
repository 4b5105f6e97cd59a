"""The score job's inputs, checked on the driver before Ray starts: which files, their formats, and their records."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from sentiment_ray.data.formats import open_records
from sentiment_ray.data.ray_source import EXTENSIONS
from sentiment_ray.errors import DataError
from sentiment_ray.inference.score_options import ScoreOptions
from sentiment_ray.storage import exists, filesystem, is_uri, join, list_files


def expand_inputs(inputs: list[str]) -> list[str]:
    """FILE | DIR | GLOB → sorted list of supported files (a directory contributes its supported files)."""
    files: list[str] = []
    for item in inputs:
        if is_uri(item):
            files += _expand_uri(item)
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"--input {item!r}: the pattern matches no file")
            files += matches
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lstrip(".").lower() in EXTENSIONS)
            if not found:
                raise DataError(f"--input {item!r}: the folder holds no {'/'.join(EXTENSIONS)} file")
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise DataError(f"--input {item!r}: no such file or folder")
    unsupported = [f for f in files if f.rsplit(".", 1)[-1].lower() not in EXTENSIONS]
    if unsupported:
        raise DataError(f"unsupported input file {unsupported[0]!r}: use one of .{', .'.join(EXTENSIONS)}")
    return [f if is_uri(f) else os.path.abspath(f) for f in files]


def _expand_uri(item: str) -> list[str]:
    """A URI to a file, a folder (its supported files, recursively) or a pattern in its last part (`s3://b/in/*.csv`)."""
    import fnmatch

    scheme = item.split("://", 1)[0]
    if any(ch in item for ch in "*?["):
        folder, pattern = item.rsplit("/", 1)
        listed = list_files(folder) if exists(folder) else {}
        matches = sorted(join(folder, name) for name in listed if "/" not in name and fnmatch.fnmatch(name, pattern))
        if not matches:
            raise DataError(f"--input {item!r}: the pattern matches no file")
        return matches
    fs, path = filesystem(item)
    if fs.get_file_info(path).type.name == "File":
        return [item]
    if not exists(item):
        raise DataError(f"--input {item!r}: no such file or folder ({scheme})")
    found = sorted(join(item, n) for n in list_files(item) if n.rsplit(".", 1)[-1].lower() in EXTENSIONS)
    if not found:
        raise DataError(f"--input {item!r}: the folder holds no {'/'.join(EXTENSIONS)} file")
    return found


def describe_inputs(files: list[str], opts: ScoreOptions) -> list[dict]:
    """Per input file: format and encoding; refuses a file whose columns cannot work. Reads only its first records:
    the job counts the records while it scores them (`records` is added to each entry then)."""
    return [_describe(path, opts) for path in files]


def _open(path: str):
    """A seekable binary stream of a local file or a URI (pyarrow's random-access file)."""
    if not is_uri(path):
        return open(path, "rb")
    fs, inner = filesystem(path)
    return fs.open_input_file(inner)


def _describe(path: str, opts: ScoreOptions) -> dict:
    with _open(path) as stream:
        parsed = open_records(stream, path, opts.read_options)
        columns = parsed.columns or _json_keys(parsed.records)
    for flag, column in (("--text-column", opts.text_column), ("--id-column", opts.id_column)):
        if column and column not in columns:
            available = ", ".join(repr(c) for c in columns) or "(none)"
            raise DataError(f"{path}: no column {column!r}; available columns: {available}. Choose one with {flag}.")
    return {"path": path, "format": parsed.format, "encoding": parsed.encoding}


def _json_keys(records, sample: int = 1000) -> list[str]:
    """A JSON file has no header: the keys of its first `sample` records stand in for one."""
    keys: dict[str, None] = {}
    for number, record in enumerate(records):
        if number == sample:
            break
        keys.update(dict.fromkeys(record.values or {}))
    return list(keys)
