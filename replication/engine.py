"""The one engine core: skip what is finished, lock, run, record a failure. Every front end calls :func:`run_guarded`.

``make replicate`` (each experiment as a papermill notebook), ``replication.plain_engine`` (in-process, for GPU machines)
and the Ray engine (a notebook on a worker) differ only in the work they hand in and in what "finished" means for
them (the notebook engines also want the executed notebook drawn from today's template).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .experiments import UNAVAILABLE, Experiment, data_unavailable
from .files import locked, write_text


def lock_file(results: Path, step: str) -> Path:
    return results / ".locks" / f"{step}.lock"


def failure_file(results: Path, step: str) -> Path:
    return results / "failed" / f"{step}.txt"


def last_line(exc: BaseException) -> str:
    """The last line of an error's message (papermill's errors end with the original one)."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def unavailable(experiment: Experiment) -> str | None:
    """Why an experiment cannot run here (its optional data set is not on this machine), or None."""
    if data_unavailable(experiment):
        return f"{UNAVAILABLE} (place {experiment.dataset}.npz in $MADE_DATA_DIR or ./data)"
    return None


def run_guarded(
    name: str, results: Path, work: Callable[[], None], finished: Callable[[], bool], why_not: str | None = None
) -> bool:
    """Run ``work`` (step ``name``: an experiment, or the masks curve) unless ``finished()`` or it cannot run here
    (``why_not``), holding its lock (waiting for another process that runs it, then finding it finished); a failure
    is recorded in ``RESULTS/failed/NAME.txt`` and reported, not raised, so the other steps go on. Returns whether
    the step is finished (or skipped)."""
    if finished():
        print(f"[skip] {name}: finished, nothing to do", flush=True)
        return True
    if why_not:
        print(f"[skip] {name}: {why_not}", flush=True)
        return True
    with locked(lock_file(results, name), f"{name} in {results}", wait=True):
        if finished():
            print(f"[skip] {name}: finished by another process", flush=True)  # while we waited for the lock
            return True
        print(f"[run] {name}", flush=True)
        started = time.perf_counter()
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - any failure of one experiment is reported, the others go on
            write_text(failure_file(results, name), last_line(exc) + "\n")
            print(f"[FAILED] {name}: {last_line(exc)}", file=sys.stderr, flush=True)
            traceback.print_exc(limit=1)
            return False
        failure_file(results, name).unlink(missing_ok=True)
        print(f"[done] {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return True
