"""The score job's progress line: rows done of the total, rows/s and ETA, every INTERVAL_S, then once at the end.

The predictor actors add each batch's row count to a `RowCounter` actor (zero CPUs, one method call per batch
of `batch_size` rows, answered without waiting); a thread on the driver reads it. Rows written by an earlier,
interrupted run of the same output count as done from the start.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("sentiment_ray.score")  # console tag [score]

INTERVAL_S = 10.0


class RowCounter:
    """Rows scored so far and their shift tally, summed over every actor (a Ray actor: `counter_actor()`), and the
    job's predictor actors, so that a failed job can stop them (`stop_job_actors`)."""

    def __init__(self):
        self.rows = 0
        self.workers = []
        self.shift_tally = None  # shift.ShiftTally over every batch, for the job's shift check
        self.records = {}  # input path → records read from it: set once per file, so a retried read counts once

    def add(self, rows: int, tally=None) -> None:
        self.rows += rows
        if tally is not None:
            self.shift_tally = tally if self.shift_tally is None else self.shift_tally.merge(tally)

    def tally(self):
        return self.shift_tally

    def total(self) -> int:
        return self.rows

    def file_read(self, path: str, records: int) -> None:
        self.records[path] = records

    def files_read(self) -> dict[str, int]:
        return self.records

    def progress(self) -> tuple[int, dict[str, int]]:
        return self.rows, self.records

    def register(self, actor) -> None:
        self.workers.append(actor)

    def actors(self) -> list:
        return self.workers


def counter_actor():
    import ray

    return ray.remote(num_cpus=0)(RowCounter).remote()


def stop_job_actors(counter) -> None:
    """Kill the job's predictor actors and its counter. A failed Ray Data job leaves its actors alive (with their
    CPUs) while anything in the driver still refers to its executor, e.g. a caller holding the exception; the next
    job on the same Ray then waited for CPUs for good. Best effort: an actor already gone is skipped."""
    import ray

    try:
        workers = ray.get(counter.actors.remote(), timeout=30)
    except Exception:  # noqa: BLE001 - the counter died with the job: nothing to find
        workers = []
    for actor in [*workers, counter]:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001
            log.debug("actor already gone", exc_info=True)


def progress_line(done: int, total: int | None, elapsed_s: float, new_rows: int) -> str:
    """`12,288/100,000 rows (12%), 1,020 rows/s, ETA 1m 26s`: the rate over this run's rows only. The total is
    None until every input file was read whole (records are counted while reading): `12,288 rows, 1,020 rows/s`."""
    rate = new_rows / elapsed_s if elapsed_s > 0 else 0.0
    if total is None:
        return f"{done:,} rows, " + (f"{rate:,.0f} rows/s" if new_rows else "actors starting")
    share = f" ({100 * done / total:.0f}%)" if total else ""
    if not new_rows:
        return f"{done:,}/{total:,} rows{share}, actors starting"
    eta = f", ETA {duration(max(0, total - done) / rate)}" if done < total else ""
    return f"{done:,}/{total:,} rows{share}, {rate:,.0f} rows/s{eta}"


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class ScoreProgress:
    """A context manager: logs the progress line every `interval_s` while the job runs."""

    def __init__(self, counter, files: int, already_done: int = 0, interval_s: float = INTERVAL_S):
        """files: how many input files the job reads; the total is known once the counter has all their counts."""
        self.counter, self.files, self.already_done, self.interval_s = counter, files, already_done, interval_s
        self._stop = threading.Event()
        self._last = ""
        self._thread = threading.Thread(target=self._run, name="score-progress", daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s)

    def _run(self) -> None:
        import ray

        while not self._stop.wait(self.interval_s):
            try:
                scored, read = ray.get(self.counter.progress.remote(), timeout=self.interval_s)
            except Exception:  # noqa: BLE001 - a progress line is never worth failing the job over
                continue
            total = sum(read.values()) if len(read) == self.files else None
            line = progress_line(self.already_done + scored, total, time.monotonic() - self.started, scored)
            if scored or line != self._last:  # "actors starting" once, not every interval
                log.info(line)
            self._last = line
