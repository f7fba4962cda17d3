"""A stop (Ctrl-C, SIGTERM) as a request that the work honours at safe points.

    with stop_on_signals():
        for video in videos:
            stop_point()  # raises Stopped once a stop was requested
            ...

The signal handlers only set a flag, so no exception ever surfaces inside whatever code the signal interrupts
(a C++ frame, a weakref callback); the work checks the flag between videos, batches, frames and steps, and the
Stopped it raises there runs the usual clean-up (Stopped is a KeyboardInterrupt). A second signal exits at once
with EXIT_STOPPED, leaving the clean-up to the next run.
"""
import contextlib
import os
import signal
import threading
import time

EXIT_STOPPED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_requested = False  # a plain flag: setting a threading.Event in a handler could wait on a lock its thread holds
_owner = None  # the process that installed the handlers (forked workers inherit them and ignore the signals)


class Stopped(KeyboardInterrupt):
    """Raised at a safe point once a stop was requested."""


def requested() -> bool:
    return _requested


def request() -> None:
    """Ask the work to stop at its next safe point (what the signal handlers do)."""
    global _requested
    _requested = True


def stop_point() -> None:
    """A safe point: raises Stopped when a stop was requested."""
    if _requested:
        raise Stopped("stopped on request")


def wait_for_stop(poll=0.2) -> None:
    """Block until a stop is requested."""
    while not _requested:
        time.sleep(poll)


def _on_signal(signum, frame):
    if os.getpid() != _owner:
        return
    if _requested:
        os.write(2, b"\nstopped at once (second signal); a rerun clears what was left\n")
        os._exit(EXIT_STOPPED)
    request()
    os.write(2, f"\n{signal.Signals(signum).name}: stopping at the next safe point (again to stop at once)\n"
             .encode())


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM request a stop while the block runs (main thread only; elsewhere nothing changes)."""
    global _owner, _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    _owner = os.getpid()
    previous = {number: signal.signal(number, _on_signal) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: one set outside Python
        _requested = False
