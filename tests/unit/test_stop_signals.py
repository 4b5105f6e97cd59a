"""How `serve` stops (`cli/stop_signals.py`), on this process's real signals: SIGTERM or Ctrl-C while it starts, and
while it serves, also when the kernel hands the signal to a thread other than the main one (a Ray driver runs a
few dozen)."""

import os
import signal
import threading
import time

import pytest

from sentiment_ray.cli.stop_signals import POLL_S, STOP_SIGNALS, StopSignals


@pytest.fixture(autouse=True)
def restored_handlers():
    """StopSignals installs handlers for this process; the rest of the session gets its own back."""
    assert threading.current_thread() is threading.main_thread()  # handlers can only be installed from here
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_ctrl_c_while_starting_interrupts_the_start_even_when_the_process_inherited_it_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # how a background job of a shell script starts
    stop = StopSignals()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)  # a start that takes long: the signal ends it
    assert stop.received == [signal.SIGINT] and stop.name() == "SIGINT"
    assert stop.wait() == signal.SIGINT  # the command then shuts down instead of waiting


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_another_thread_receives_while_serving_ends_the_wait(signum):
    stop = StopSignals()
    stop.serving()
    main_thread = threading.main_thread().ident
    waited = threading.Event()

    def receive_it_here() -> None:
        time.sleep(0.5)  # the main thread is waiting by then
        signal.pthread_kill(threading.get_ident(), signum)  # this thread's C handler only flags it
        if not waited.wait(10 * POLL_S):  # an untimed wait never saw it: wake the main thread, to fail
            signal.pthread_kill(main_thread, signal.SIGTERM)

    helper = threading.Thread(target=receive_it_here)
    helper.start()
    started = time.monotonic()
    received = stop.wait()  # raises nothing once serving
    waited_s = time.monotonic() - started
    waited.set()
    helper.join()  # no signal of this test may reach a later one

    assert received == signum
    assert waited_s < 0.5 + 3 * POLL_S, f"the wait saw the signal only after {waited_s:.1f} s"
