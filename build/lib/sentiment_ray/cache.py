"""The on-disk cache shared by every process on a machine (driver, Ray workers, tests).

Cache entries are whole folders named after a hash of everything that went into them, so an entry is
never updated in place. An entry is **complete or absent**:

- it is built in a private temp folder and published with one atomic rename, only after a check that
  every file a reader needs is there and non-empty (`required`);
- a reader trusts an entry only when that check passes; an incomplete one (a crashed writer from an old
  version, a rank-0-only `save_pretrained` run on another rank, a half-deleted folder) is rebuilt;
- writers of one entry take an exclusive file lock, so concurrent Ray workers build it once and the
  others wait and reuse it.

The driver builds shared entries (the tiny model, the tokenizer) before any worker starts; the lock and
the check keep a worker that still gets there first (another node, a direct library call) safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from sentiment_ray.errors import SentimentRayError

CACHE_ENV_VAR = "SENTIMENT_RAY_CACHE"
_DEFAULT_CACHE = "~/.cache/sentiment-ray"
log = logging.getLogger(__name__)


class CacheError(SentimentRayError):
    """A cache entry could not be built completely; nothing was published."""


def sentiment_ray_cache_dir() -> Path:
    """Root of the cache: `$SENTIMENT_RAY_CACHE`, else `~/.cache/sentiment-ray`. Not created here."""
    return Path(os.environ.get(CACHE_ENV_VAR, _DEFAULT_CACHE)).expanduser()


def short_hash(parts: Iterable[str | bytes], length: int = 12) -> str:
    """A stable hex digest of `parts`, used to name cache entries after their inputs."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        # Length-prefix each part so that ("ab", "c") and ("a", "bc") hash differently.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:length]


def missing_files(folder: Path, required: Sequence[str]) -> list[str]:
    """The names in `required` that are not a non-empty file in `folder` (all of them if it does not exist)."""
    return [name for name in required if not _non_empty_file(folder / name)]


def _non_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def cached_directory(target: Path, required: Sequence[str], build: Callable[[Path], None]) -> Path:
    """Return `target` once it holds every `required` file, calling `build(tmp_folder)` to make it if not.

    The fast path (a complete entry) takes no lock. Otherwise the caller takes the entry's lock, looks
    again (another process may have just finished), removes an incomplete entry, and builds and publishes
    a new one with `atomic_directory`.
    """
    if not missing_files(target, required):
        return target
    with _entry_lock(target):
        if not missing_files(target, required):
            return target
        if target.exists():
            log.warning("cache entry %s is incomplete (no %s): rebuilding it", target, missing_files(target, required))
            shutil.rmtree(target)
        with atomic_directory(target, required) as tmp:
            build(tmp)
    return target


@contextlib.contextmanager
def _entry_lock(target: Path) -> Iterator[None]:
    """An exclusive lock on `.<name>.lock` beside `target`, held while one process builds the entry."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # blocks until the process building the entry has published it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_directory(target: Path, required: Sequence[str] = ()) -> Iterator[Path]:
    """Yield an empty temp folder; on clean exit it becomes `target` in one rename, if it is complete.

    The temp folder lives next to `target` so that `os.replace` stays on one file system and is atomic:
    readers see either no `target` or a complete one. Before the rename, every name in `required` must be
    a non-empty file in the temp folder, else `CacheError` is raised and nothing is published. If another
    process published a complete `target` first, our copy is discarded and theirs is kept (entries are
    content-addressed, so both are equivalent); an incomplete one in the way is replaced. On an exception
    the temp folder is removed and nothing is published.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps a crashed writer's leftovers from looking like a real entry.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        missing = missing_files(tmp, required)
        if missing:
            raise CacheError(f"refusing to publish cache entry {target}: the build left no {', '.join(missing)}")
        # mkdtemp makes the folder private (0700); a cache entry should be readable like any other file.
        os.chmod(tmp, 0o755)
        _publish(tmp, target, required)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, target: Path, required: Sequence[str]) -> None:
    try:
        os.replace(tmp, target)
        return
    except OSError:
        # Linux refuses to replace a non-empty folder: someone else published first.
        if not target.is_dir():
            raise
    if not missing_files(target, required):
        return  # theirs is complete: use it
    # Theirs is incomplete: move it aside (one rename, so readers never see a half-deleted folder), then publish.
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.broken-", dir=target.parent))
    os.replace(target, aside / "entry")
    os.replace(tmp, target)
    shutil.rmtree(aside, ignore_errors=True)
