"""A clock of the time this process ran: time it spent stopped (SIGSTOP, Ctrl-Z) does not count.

A long run may be paused (``kill -STOP``) while another job measures, then continued (``kill -CONT``); its
recorded training time should be the time it trained, not the pause. A daemon thread wakes every ``tick``
seconds; a stopped process runs none of its threads, so the first wake after a pause comes late, and a
lateness beyond ``slack`` seconds is counted as stopped time (less at most one tick) and left out of
:meth:`RunningClock.now`. Stops shorter than ``slack`` count as running time.

>>> clock = RunningClock()
>>> start = clock.now()
>>> 0.0 <= clock.now() - start < 1.0
True
>>> clock.stopped_seconds()
0.0
"""

from __future__ import annotations

import threading
import time

__all__ = ["RunningClock", "running_clock"]

TICK = 0.1  # seconds between wakes of the watching thread: a stop is undercounted by at most this
SLACK = 1.0  # a wake later than this is a stop: a thread's wake measured at most 0.03 s late on a busy 2-core machine


class RunningClock:
    """Seconds since an arbitrary origin, less the time the process was stopped (a monotonic clock)."""

    def __init__(self, tick: float = TICK, slack: float = SLACK) -> None:
        self._tick, self._slack = tick, slack
        self._stopped = 0.0
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="running-clock", daemon=True).start()

    def _watch(self) -> None:
        last = time.perf_counter()
        while True:
            time.sleep(self._tick)
            now = time.perf_counter()
            late = now - last - self._tick
            if late > self._slack:
                with self._lock:
                    self._stopped += late
            last = now

    def stopped_seconds(self) -> float:
        """The seconds counted as stopped so far."""
        with self._lock:
            return self._stopped

    def now(self) -> float:
        """``time.perf_counter()`` less the stopped seconds: differences of two readings are running time."""
        with self._lock:
            return time.perf_counter() - self._stopped


_CLOCK: RunningClock | None = None
_CLOCK_LOCK = threading.Lock()


def running_clock() -> RunningClock:
    """The process's one running clock, started on first use.

    >>> running_clock() is running_clock()
    True
    """
    global _CLOCK
    with _CLOCK_LOCK:
        if _CLOCK is None:
            _CLOCK = RunningClock()
        return _CLOCK
