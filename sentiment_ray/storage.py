"""Remote storage behind URIs: `s3://`, `gs://`, `hdfs://` (any pyarrow filesystem); `location.Location` decides
whether a path is one.

A run's outputs (model folder, results, logs) can live in shared storage, and every loader reads a model folder
from it. Endpoints and credentials come from the filesystem's own standard settings (for S3: `AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` or an instance profile), so S3-compatible stores such as
MinIO, Ceph and R2 work as they are; sentiment-ray adds no flags of its own for them.

A model folder behind a URI is read through a local copy: each node downloads it once into the cache
(`cache.cached_directory`), under a name made of the URI and the listing of its files (path, size, modification
time), so that a changed folder is a new entry. Each file is checked against the listing's size before the entry
is published; concurrent actors or replicas on one node take the entry's lock and share one download.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sentiment_ray.cache import cached_directory, sentiment_ray_cache_dir, short_hash
from sentiment_ray.errors import SentimentRayError

log = logging.getLogger(__name__)


class StorageError(SentimentRayError):
    """A URI that cannot be reached, listed or read; the message names it."""


def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for `uri`; StorageError naming it if no filesystem takes it."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, OSError, ValueError) as err:
        raise StorageError(f"{uri}: cannot open this URI's filesystem ({err})") from None


def list_files(uri: str) -> dict[str, tuple[int, int]]:
    """{relative path: (bytes, mtime in ns)} of every file under `uri` (a folder); StorageError if none."""
    import pyarrow.fs

    fs, root = filesystem(uri)
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    except (FileNotFoundError, OSError) as err:
        raise StorageError(f"{uri}: cannot list it ({err})") from None
    files = {
        info.path[len(root) :].lstrip("/"): (info.size, info.mtime_ns or 0)
        for info in infos
        if info.type == pyarrow.fs.FileType.File
    }
    if not files:
        raise StorageError(f"{uri}: no such folder, or it holds no file")
    return files


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except (FileNotFoundError, OSError) as err:
        raise StorageError(f"{uri}: cannot read it ({err})") from None


def upload_folder(local: str | Path, uri: str, last: str | None = None) -> None:
    """Copy the local folder `local` to `uri` (created; files already there are overwritten); StorageError naming
    both when the store fails.

    `last`, a file of the folder, is removed at `uri` first and uploaded after every other file: a reader who
    finds it finds the rest, and an upload that breaks off leaves a folder without it. (A model folder's
    `sentiment_meta.json`: every loader refuses a folder without one.)
    """
    import pyarrow.fs

    fs, path = filesystem(uri)
    source = Path(local).resolve()
    try:
        fs.create_dir(path, recursive=True)
        if last is None:
            pyarrow.fs.copy_files(str(source), path, destination_filesystem=fs)
            return
        if fs.get_file_info(f"{path}/{last}").type != pyarrow.fs.FileType.NotFound:
            fs.delete_file(f"{path}/{last}")
        names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
        for name in [n for n in names if n != last] + [last]:
            pyarrow.fs.copy_files(str(source / name), f"{path}/{name}", destination_filesystem=fs)
    except OSError as err:
        raise StorageError(f"{uri}: uploading {source} failed ({err})") from None


def cached_folder(uri: str) -> Path:
    """This node's cached, verified copy of the folder at `uri`."""
    uri = uri.rstrip("/")
    return _cached_copy(uri, list_files(uri))


def cached_copy(uri: str) -> Path:
    """This node's cached copy of the file or folder at `uri`."""
    import pyarrow.fs

    uri = uri.rstrip("/")
    fs, inner = filesystem(uri)
    info = fs.get_file_info(inner)
    if info.type != pyarrow.fs.FileType.File:
        return cached_folder(uri)
    folder, name = uri.rsplit("/", 1)
    return _cached_copy(folder, {name: (info.size, info.mtime_ns or 0)}) / name


def _cached_copy(uri: str, listing: dict[str, tuple[int, int]]) -> Path:
    key = short_hash([uri, *(f"{name}:{size}:{mtime}" for name, (size, mtime) in sorted(listing.items()))])
    target = sentiment_ray_cache_dir() / "remote" / f"{Path(uri).name or 'folder'}-{key}"
    required = [name for name, (size, _) in listing.items() if size > 0]
    return cached_directory(target, required, lambda tmp: _download(uri, listing, tmp))


def _download(uri: str, listing: dict[str, tuple[int, int]], into: Path) -> None:
    fs, root = filesystem(uri)
    log.info("downloading %s (%d files, %.1f MB) into %s", uri, len(listing), _megabytes(listing), into)
    for name, (size, _) in listing.items():
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(f"{root}/{name}") as source, open(target, "wb") as out:
            while chunk := source.read(8 << 20):
                out.write(chunk)
        if target.stat().st_size != size:  # a file that changed or broke off mid-copy: publish nothing
            raise StorageError(f"{uri}/{name}: read {target.stat().st_size} bytes, the listing said {size}")


def _megabytes(listing: dict[str, tuple[int, int]]) -> float:
    return sum(size for size, _ in listing.values()) / 1e6


def upload_file(local: str | Path, uri: str) -> None:
    fs, path = filesystem(uri)
    try:
        with open(local, "rb") as source, fs.open_output_stream(path) as out:
            while chunk := source.read(8 << 20):
                out.write(chunk)
    except OSError as err:
        raise StorageError(f"{uri}: uploading {local} failed ({err})") from None
