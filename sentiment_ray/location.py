"""Where a file or folder is, decided once where a path enters (a job's options, an API argument, a model folder
named by a config): a local path, or a URI of any pyarrow filesystem (`s3://`, `gs://`, `hdfs://`).

`Location.of(value)` makes that decision: `file:///x` and `x` are local paths (made absolute, since Ray workers and
Ray Data run in other working dirs), and anything else of the form `scheme://…` is remote. Code past the entry asks
the Location (`.remote`, `.filesystem()`, `.local_copy()`) instead of testing the string again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


@dataclass(frozen=True)
class Location:
    text: str
    """A URI without a trailing `/`, or an absolute local path without `file://`."""
    remote: bool

    @classmethod
    def of(cls, value: str | os.PathLike | Location) -> Location:
        if isinstance(value, Location):
            return value
        text = str(value)
        match = _SCHEME.match(text)
        if match and match.group(1).lower() != "file":
            return cls(text.rstrip("/"), True)
        if match:
            text = text[len(match.group(0)) :]
        return cls(os.path.abspath(text), False)

    def __str__(self) -> str:
        return self.text

    @property
    def path(self) -> Path:
        """The local path; a remote location has none (use `local_copy()`)."""
        if self.remote:
            raise ValueError(f"{self.text} is a URI, not a local path")
        return Path(self.text)

    @property
    def name(self) -> str:
        return self.text.rsplit("/", 1)[-1]

    @property
    def scheme(self) -> str:
        return self.text.split("://", 1)[0] if self.remote else "file"

    @property
    def parent(self) -> Location:
        """The folder holding it, on the same filesystem."""
        return Location(self.text.rsplit("/", 1)[0], self.remote)

    def join(self, *parts: str) -> Location:
        """`self/part/…` (no os.path on a URI: it would turn `s3://` into `s3:/`)."""
        return Location("/".join([self.text, *(str(p).strip("/") for p in parts)]), self.remote)

    def sibling(self, suffix: str) -> Location:
        """`<self><suffix>` beside it: `out` → `out.checkpoint`, `out.lock`, `out.log`."""
        return Location(self.text + suffix, self.remote)

    def inner(self, path: str) -> Location:
        """A path inside this location's filesystem, as pyarrow and Ray report it (`bucket/key`: no scheme), as a
        Location of the same filesystem; a path that names its scheme is taken as it is."""
        if _SCHEME.match(path):
            return Location.of(path)
        return Location(f"{self.scheme}://{path.lstrip('/')}" if self.remote else os.path.abspath(path), self.remote)

    def filesystem(self):
        """(pyarrow filesystem, path inside it); StorageError naming a URI that no filesystem takes."""
        if not self.remote:
            import pyarrow.fs

            return pyarrow.fs.LocalFileSystem(), self.text
        from sentiment_ray.storage import filesystem

        return filesystem(self.text)

    def kind(self) -> str:
        """ "file", "folder" or "missing"."""
        import pyarrow.fs

        fs, inner = self.filesystem()
        found = fs.get_file_info(inner).type
        return {pyarrow.fs.FileType.File: "file", pyarrow.fs.FileType.Directory: "folder"}.get(found, "missing")

    def read_bytes(self) -> bytes:
        if not self.remote:
            return self.path.read_bytes()
        from sentiment_ray.storage import read_bytes

        return read_bytes(self.text)

    def local_folder(self) -> Path:
        """A local folder: this one, or this node's cached, verified copy of a remote folder."""
        if not self.remote:
            return self.path
        from sentiment_ray.storage import cached_folder

        return cached_folder(self.text)

    def local_copy(self) -> Path:
        """A local file or folder: this one, or this node's cached copy of a remote file or folder."""
        if not self.remote:
            return self.path
        from sentiment_ray.storage import cached_copy

        return cached_copy(self.text)


def is_relative_path(value: str) -> bool:
    """True for a local path given relative to the working dir (what `Location.of` makes absolute)."""
    match = _SCHEME.match(value)
    if match and match.group(1).lower() != "file":
        return False
    return not os.path.isabs(value[len(match.group(0)) :] if match else value)
