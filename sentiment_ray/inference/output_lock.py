"""One score job per output: `<output>.lock` beside the output names the job that writes it.

Two jobs writing one output at once would interleave their files (and `--overwrite` of the second would delete the
first's rows under it). The lock is created with O_CREAT | O_EXCL, which the OS makes atomic, and holds the
writer's host, pid, start time and command; a second job refuses, naming them. A lock left by a job that died
(same host, its pid gone) is taken over with a warning. A URI output (s3://…) is not locked: object stores have no
atomic create here, and the docs say so (docs/guide/scoring.md).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sentiment_ray.errors import DataError
from sentiment_ray.location import Location

log = logging.getLogger("sentiment_ray.score")


def lock_path(output: Location | str) -> Path:
    """`<output>.lock` beside a local output."""
    return Location.of(output).sibling(".lock").path


@contextmanager
def output_lock(output: Location | str):
    """Hold `<output>.lock` while the block runs (a no-op for a URI output)."""
    output = Location.of(output)
    if output.remote:
        yield None
        return
    path = lock_path(output)
    acquire(path, output)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def acquire(path: Path, output: Location) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": " ".join(sys.argv)}
    for _ in range(2):  # a second try after removing a stale lock
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if not _stale(holder):
                raise DataError(_busy_message(output, path, holder)) from None
            log.warning("removed the lock of a score job that is gone (%s): %s", _who(holder), path)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as stream:
            json.dump(mine, stream)
        return
    raise DataError(f"--output {output}: could not take its lock {path}; another job took it meanwhile")


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # being written this instant, or not ours: treat it as held
        return {}


def _stale(holder: dict) -> bool:
    """Held by a process of this host that no longer exists."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _who(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}: {holder.get('command', '?')}"


def _busy_message(output: Location, path: Path, holder: dict) -> str:
    return (
        f"--output {output} is being written by another score job ({_who(holder)}); wait for it to finish or pass "
        f"another --output. If that job is gone for good, delete {path}"
    )
