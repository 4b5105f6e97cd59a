"""The score job's inputs, checked on the driver before Ray starts: which files, their formats, and their records."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from sentiment_ray.data.formats import open_records
from sentiment_ray.data.ray_source import EXTENSIONS
from sentiment_ray.errors import DataError
from sentiment_ray.inference.score_options import ScoreOptions
from sentiment_ray.location import Location
from sentiment_ray.storage import list_files


def expand_inputs(inputs: list[str]) -> list[Location]:
    """FILE | DIR | GLOB (each local or a URI) → sorted list of supported files (a directory contributes its
    supported files)."""
    files: list[Location] = []
    for item in inputs:
        if (location := Location.of(item)).remote:
            files += _expand_uri(location, item)
        elif any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise DataError(f"--input {item!r}: the pattern matches no file")
            files += map(Location.of, matches)
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lstrip(".").lower() in EXTENSIONS)
            if not found:
                raise DataError(f"--input {item!r}: the folder holds no {'/'.join(EXTENSIONS)} file")
            files += map(Location.of, found)
        elif os.path.isfile(item):
            files.append(Location.of(item))
        else:
            raise DataError(f"--input {item!r}: no such file or folder")
    unsupported = [f for f in files if f.name.rsplit(".", 1)[-1].lower() not in EXTENSIONS]
    if unsupported:
        raise DataError(f"unsupported input file {unsupported[0].text!r}: use one of .{', .'.join(EXTENSIONS)}")
    return files


def _expand_uri(location: Location, item: str) -> list[Location]:
    """A URI to a file, a folder (its supported files, recursively) or a pattern in its last part (`s3://b/in/*.csv`);
    `item`: the --input as given, for messages."""
    import fnmatch

    if any(ch in location.name for ch in "*?["):
        folder = location.parent
        listed = list_files(folder.text) if folder.kind() == "folder" else {}
        names = sorted(n for n in listed if "/" not in n and fnmatch.fnmatch(n, location.name))
        if not names:
            raise DataError(f"--input {item!r}: the pattern matches no file")
        return [folder.join(name) for name in names]
    kind = location.kind()
    if kind == "file":
        return [location]
    if kind == "missing":
        raise DataError(f"--input {item!r}: no such file or folder ({location.scheme})")
    found = sorted(n for n in list_files(location.text) if n.rsplit(".", 1)[-1].lower() in EXTENSIONS)
    if not found:
        raise DataError(f"--input {item!r}: the folder holds no {'/'.join(EXTENSIONS)} file")
    return [location.join(name) for name in found]


def describe_inputs(files: list[Location], opts: ScoreOptions) -> list[dict]:
    """Per input file: format and encoding; refuses a file whose columns cannot work. Reads only its first records:
    the job counts the records while it scores them (`records` is added to each entry then)."""
    return [_describe(path, opts) for path in files]


def _open(file: Location):
    """A seekable binary stream of a local file or a URI (pyarrow's random-access file)."""
    if not file.remote:
        return open(file.path, "rb")
    fs, inner = file.filesystem()
    return fs.open_input_file(inner)


def _describe(file: Location, opts: ScoreOptions) -> dict:
    path = file.text
    with _open(file) as stream:
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
