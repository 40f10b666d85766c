"""What ``make replicate`` runs: ``python -m replication.replicate {check,list,run,curve,summary}``.

Each step executes a thin papermill notebook from ``notebooks/`` into ``RESULTS/notebooks/`` (atomically).
A failing experiment is recorded in ``RESULTS/failed/NAME.txt`` and does not stop the others;
``summary`` reports failures and exits non-zero when there are any.  Each experiment and the summary
hold a lock in ``RESULTS/.locks/`` while they work, so two concurrent ``make replicate`` into one folder
never do the same work twice; a step with nothing new to do writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from . import curve, summary
from .errors import ReplicationError
from .experiments import check_plan, is_complete, load_plan
from .files import atomic_path, locked, write_text
from .tables import TABLES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def relative(path: Path) -> str:
    """``path`` relative to the notebooks folder (the kernel's working directory): no machine's path is injected."""
    return os.path.relpath(path.resolve(), NOTEBOOKS)


def execute(notebook: str, output: Path, parameters: dict) -> None:
    """Execute ``notebooks/<notebook>`` with papermill into ``output`` (replaced in one rename when it succeeds)."""
    import papermill

    with atomic_path(output, suffix=".tmp.ipynb") as tmp:
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS / notebook), str(tmp), parameters=parameters, progress_bar=False, log_output=True,
                cwd=str(NOTEBOOKS), kernel_name="python3",
            )  # fmt: skip
        except Exception:
            if tmp.is_file():  # the executed notebook, complete up to the failing cell: the record of the failure
                os.replace(tmp, output)
            raise


def run_step(step: str, notebook: str, results: Path, parameters: dict) -> bool:
    """Execute one notebook into ``RESULTS/notebooks/STEP.ipynb``; on failure record ``RESULTS/failed/STEP.txt``
    and report it instead of raising, so the other steps still run.  Returns whether it succeeded."""
    failed = results / "failed" / f"{step}.txt"
    output = results / "notebooks" / f"{step}.ipynb"
    try:
        execute(notebook, output, parameters)
    except Exception as exc:  # noqa: BLE001 - any failure of one step is reported, the others go on
        text = str(exc).strip()
        message = text.splitlines()[-1] if text else type(exc).__name__
        write_text(failed, message + "\n")
        print(f"[FAILED] {step}: {message} (details: {output})", file=sys.stderr)
        traceback.print_exc(limit=1)
        return False
    failed.unlink(missing_ok=True)
    return True


def lock_file(results: Path, step: str) -> Path:
    return results / ".locks" / f"{step}.lock"


def run_one(name: str, profile: str, results: Path, runs: Path) -> int:
    """Run experiment ``name`` unless finished (waiting for another process that is running it)."""
    experiment = load_plan().experiment(name, profile)
    if is_complete(experiment, results):
        print(f"[skip] {name}: finished with the same recipe")
        return 0
    with locked(lock_file(results, name), f"experiment {name} in {results}", wait=True):
        if is_complete(experiment, results):  # another process finished it while we waited
            print(f"[skip] {name}: finished by another process")
            return 0
        print(f"[run] {name} ({profile} profile)", flush=True)
        started = time.perf_counter()
        params = {"name": name, "profile": profile, "results_dir": relative(results), "runs_dir": relative(runs)}
        if run_step(name, "experiment.ipynb", results, params):
            print(f"[done] {name} in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def run_curve(profile: str, results: Path, runs: Path) -> int:
    """Draw the masks curve unless it is current."""
    with locked(lock_file(results, "masks_curve"), f"the masks curve of {results}", wait=True):
        if (results / "notebooks" / "masks_curve.ipynb").is_file() and curve.is_current(profile, results):
            print("[skip] masks curve: up to date")
            return 0
        params = {"profile": profile, "results_dir": relative(results), "runs_dir": relative(runs)}
        run_step("masks_curve", "masks_curve.ipynb", results, params)
    return 0


def run_summary(profile: str, results: Path, started: float | None) -> int:
    """Write the tables and READMEs unless nothing they are drawn from has changed; print the tables."""
    with locked(lock_file(results, "summary"), f"the summary of {results}", wait=True):
        if (results / "notebooks" / "summary.ipynb").is_file() and summary.is_current(results, profile):
            print("[skip] summary: nothing new since it was written")
        else:
            wall = time.time() - started if started else None
            own_results = results.resolve() == (NOTEBOOKS.parent / "results").resolve()  # never for smoke runs elsewhere
            params = {"profile": profile, "results_dir": relative(results), "wall_seconds": wall,
                      "project_readme": "../README.md" if own_results else None}  # fmt: skip
            execute("summary.ipynb", results / "notebooks" / "summary.ipynb", params)
    for stem in TABLES:
        print(f"\n## {stem}\n\n{(results / f'{stem}.md').read_text()}")
    failures = sorted((results / "failed").glob("*.txt")) if (results / "failed").is_dir() else []
    for path in failures:
        print(f"[FAILED] {path.stem}: {path.read_text().strip()}", file=sys.stderr)
    if failures:
        print(
            f"{len(failures)} step(s) failed; rerun `make replicate` to retry them (finished ones are skipped)", file=sys.stderr
        )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.replicate", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["check", "list", "run", "curve", "summary"])
    parser.add_argument("name", nargs="?", help="experiment name (for run)")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated experiment names (check, list)")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--started", type=float, default=None, help="UNIX time the replication started (summary)")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n]
    try:
        if args.command == "check":
            experiments = check_plan(args.profile, only)
            print(f"profile {args.profile}: {len(experiments)} experiment(s), data found for all: "
                  + ", ".join(e.name for e in experiments))  # fmt: skip
        elif args.command == "list":
            print("\n".join(e.name for e in check_plan(args.profile, only, check_data=False)))  # `check` did the data
        elif args.command == "run":
            if not args.name:
                raise ReplicationError("run needs an experiment name")
            return run_one(args.name, args.profile, args.results, args.runs)
        elif args.command == "curve":
            return run_curve(args.profile, args.results, args.runs)
        else:
            return run_summary(args.profile, args.results, args.started)
    except ReplicationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    sys.exit(main())
