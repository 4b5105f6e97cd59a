"""How `serve` stops: SIGTERM (systemd, Kubernetes) or SIGINT (Ctrl-C), while it starts or while it serves."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_S = 1.0  # seconds between the main thread's looks at a stop signal another thread received


class StopSignals:
    """Catches SIGTERM and SIGINT from its creation on, including a SIGINT the process inherited as ignored (a
    background job of a shell script starts so), which Python would otherwise leave ignored until the end.

    While the command starts, a signal raises KeyboardInterrupt in the main thread, so a slow start (Ray, the
    model load) ends at once; `serving()` marks the start as done, after which a signal only ends `wait()`.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._stop = threading.Event()
        self._starting = True
        self.install()

    def install(self) -> None:
        """Catch both with this object's handler (again): `ray.init` replaces the SIGTERM one with the fatal-signal
        handler of Ray's core worker, which prints a stack dump and aborts the process."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        self.received.append(signum)
        self._stop.set()
        if self._starting:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    def serving(self) -> None:
        """The start is done: from now on a signal only ends `wait()`."""
        self._starting = False
        self.install()

    def wait(self) -> int:
        """Block until a stop signal came (or had come); return the first one.

        The wait is timed: the kernel may hand a process's signal to any thread that does not block it. On
        another thread the C handler only flags it, and Python runs the handler when the main thread next runs
        bytecode, which an untimed wait would never do. So a signal is handled within POLL_S.
        """
        while not self._stop.wait(timeout=POLL_S):
            pass
        return self.received[0]

    def name(self) -> str:
        return signal.Signals(self.received[0]).name


def shutdown_serve() -> None:
    """Serve's applications and this process's Ray connection (an embedded Ray stops with it)."""
    import ray
    from ray import serve

    if ray.is_initialized():  # else a stop came before Ray started: nothing of Serve exists
        serve.shutdown()
    ray.shutdown()
