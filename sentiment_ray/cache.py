"""The on-disk cache shared by every process on a machine (driver, Ray workers, tests).

Cache entries are whole folders named after a hash of everything that went into them, so an entry is
never updated in place: it is written once, atomically, and then only read. Several Ray workers often
start at the same moment and all find the entry missing; each builds its own copy in a private temp
folder and renames it into place, and whoever loses the race throws its copy away.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CACHE_ENV_VAR = "SENTIMENT_RAY_CACHE"
_DEFAULT_CACHE = "~/.cache/sentiment-ray"


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


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temp folder; on clean exit it becomes `target` in one rename.

    The temp folder lives next to `target` so that `os.replace` stays on one file system and is atomic:
    readers see either no `target` or a complete one. If another process published `target` first, our
    copy is discarded and theirs is kept (entries are content-addressed, so both are equivalent). On an
    exception the temp folder is removed and nothing is published.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps a crashed writer's leftovers from looking like a real entry.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        # mkdtemp makes the folder private (0700); a cache entry should be readable like any other file.
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, target)
        except OSError:
            # Linux refuses to replace a non-empty folder: someone else finished first. Use theirs.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
