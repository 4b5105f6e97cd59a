"""What a job shows on the console: its own progress lines once, then a summary. The rest goes to a log file.

Ray forwards every worker's stdout and stderr to the driver: Ray Train's controller messages, its
`Reporting training result … metrics={…}` dump per report, transformers' progress bars and deprecation
warnings, bitsandbytes' notes. `route_to_log_file` keeps all of that in the run's log file and lets through
only lines that start with a progress tag (`[train]`, `[tune]`, `[evaluate]`), each once. `--verbose` leaves
Ray's behaviour as it is.

Progress itself goes through `logging`, one logger per layer (`sentiment_ray.training`, `.tuning`,
`.evaluation`, ...). `show_progress` gives the `sentiment_ray` logger a handler that writes INFO records as
`[train] message` lines on stdout, in the driver and in every Ray worker (whose stdout Ray forwards). A user of
the library silences it with `logging.getLogger("sentiment_ray").setLevel(logging.WARNING)`, or redirects it
with handlers of their own.

Ray has no public hook for filtering forwarded lines; the driver prints them through
`ray._private.worker.global_worker_stdstream_dispatcher` (Ray 2.60, docs/ray-2.60.md), whose handler
`ray_print_logs` we swap for ours after `ray.init`. If that private API moves, the console simply stays
verbose.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import sys
import threading
from pathlib import Path

PROGRESS_TAGS = ("[train]", "[tune]", "[evaluate]")
# The console tag of each layer's logger (sentiment_ray.<layer>.<module>); other layers show their layer name.
LAYER_TAGS = {"training": "train", "tuning": "tune", "evaluation": "evaluate", "inference": "serve"}
_RAY_HANDLER = "ray_print_logs"
_OUR_HANDLER = "sentiment_ray_console"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Ray Train V2 patches `print` in its workers into a logger call that reaches both the worker's stdout and
# stderr, so every progress line arrived twice. Off: a worker's print is a plain print again.
WORKER_ENV = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}

_log_file: Path | None = None


class ProgressFormatter(logging.Formatter):
    """`[train] message` for a record of `sentiment_ray.training.worker`: the tag is the record's layer."""

    def format(self, record: logging.LogRecord) -> str:
        parts = record.name.split(".")
        layer = parts[1] if len(parts) > 1 and parts[0] == "sentiment_ray" else parts[0]
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        return f"[{LAYER_TAGS.get(layer, layer)}] {message}"


class ProgressHandler(logging.StreamHandler):
    """A StreamHandler on `stream`, or on whatever `sys.stdout` is at the time of each record (pytest, Ray swap it)."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stdout)
        self.fixed_stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        if self.fixed_stream is None:
            self.stream = sys.stdout
        super().emit(record)


def show_progress(stream=None) -> logging.Handler:
    """Write sentiment_ray's INFO records as `[layer] message` lines on `stream` (stdout); once per process.

    Called by the CLI and at the start of Ray Train workers, never at import.
    """
    logger = logging.getLogger("sentiment_ray")
    for handler in logger.handlers:
        if isinstance(handler, ProgressHandler):
            return handler
    handler = ProgressHandler(stream)
    handler.setFormatter(ProgressFormatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return handler


def route_to_log_file(log_file: Path) -> Path:
    """From now on, library logging, warnings and (after `ray.init`) worker output go to `log_file`.

    Call once per process, before Ray starts; `init_ray` then calls `attach_to_ray`.
    """
    global _log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _log_file = log_file
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    logging.captureWarnings(True)  # warnings.warn → the py.warnings logger → the file
    # Each has a console handler of its own and no propagation. `ray.serve` sets its handler when it is imported
    # (`serve` imports it before it routes its output here); imported later, it keeps printing its INFO lines.
    for name in ("ray", "ray.data", "ray.serve", "transformers"):
        _move_console_handlers(logging.getLogger(name), handler)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return log_file


def _move_console_handlers(logger: logging.Logger, file_handler: logging.Handler) -> None:
    for existing in list(logger.handlers):
        if isinstance(existing, logging.StreamHandler) and not isinstance(existing, logging.FileHandler):
            existing.setLevel(logging.ERROR)  # errors still reach the console
    logger.addHandler(file_handler)


def attach_to_ray() -> None:
    """Swap Ray's printer of forwarded worker lines for ours, if `route_to_log_file` was called."""
    if _log_file is None:
        return
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # a Ray without this private API: stay verbose rather than fail
        return
    printer = WorkerLinePrinter(_log_file, sys.stdout)
    dispatcher.remove_handler(_RAY_HANDLER)
    dispatcher.remove_handler(_OUR_HANDLER)
    dispatcher.add_handler(_OUR_HANDLER, printer.handle)


class WorkerLinePrinter:
    """Every forwarded line to the log file; lines starting with a progress tag also to the console, once."""

    def __init__(self, log_file: Path, console, remember: int = 512):
        self.log_file, self.console = log_file, console
        self._recent: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def handle(self, data: dict) -> None:
        """`data` is one batch from Ray's log pubsub: `lines`, `pid`, `actor_name`/`task_name`, `is_err`."""
        if data.get("pid") == "autoscaler":  # its status table every few seconds: Ray's own logs keep it
            return
        source = data.get("actor_name") or data.get("task_name") or "worker"
        prefix = f"({source} pid={data.get('pid')}) "
        with self._lock, self.log_file.open("a", encoding="utf-8") as log:
            for raw in data.get("lines", []):
                line = _ANSI.sub("", raw).rstrip()
                log.write(prefix + line + "\n")
                if line.startswith(PROGRESS_TAGS) and self._first_time(line):
                    print(line, file=self.console, flush=True)

    def _first_time(self, line: str) -> bool:
        if line in self._recent:
            return False
        self._recent[line] = None
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        return True


def console_mode(
    verbose: bool, quiet: bool, log_file: Path, ray_data: bool = False, json_output: bool = False
) -> Path | None:
    """A job command's console: `verbose` leaves Ray's and the libraries' output on it (returns None); otherwise it
    goes to `log_file` (returned), and `quiet` also drops the progress lines, leaving the summary and errors.
    `json_output`: quiet, and the warnings that remain go to stderr, so stdout holds only the command's JSON.

    `ray_data`: the job runs Ray Data, whose import installs a console handler of its own on the `ray.data` logger
    (Ray 2.60); it is imported here so that the handler exists to be moved to the file.
    """
    if quiet or json_output:
        logging.getLogger("sentiment_ray").setLevel(logging.WARNING)
    if json_output:
        for handler in logging.getLogger("sentiment_ray").handlers:
            if isinstance(handler, ProgressHandler):
                handler.fixed_stream = handler.stream = sys.stderr
    if verbose:
        return None
    if ray_data:
        import ray.data  # noqa: F401
    return route_to_log_file(log_file)


def job_log_file(name: str, output: str | None) -> Path:
    """`<output>.log` beside a local output (never inside it: an output folder holds only outputs), else one per
    run under the cache's `logs/` (an `s3://` output, or none)."""
    import time

    from sentiment_ray.cache import sentiment_ray_cache_dir
    from sentiment_ray.location import Location

    location = Location.of(output) if output else None
    if location is not None and not location.remote:
        return location.sibling(".log").path
    return sentiment_ray_cache_dir() / "logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
