"""``make replicate ENGINE=ray``: the profile's experiments as Ray tasks, on a local cluster or the one at $RAY_ADDRESS.

The whole grid is submitted at once; each task executes the experiment's notebook on its worker and returns the
result files (metrics, sample grid, executed notebook) as bytes, and this driver writes them into ``RESULTS``
atomically, so no shared file system is assumed and killing the driver leaves nothing half-written. A task asks
for a GPU in a profile marked ``gpu = true`` (on a cluster that has one), otherwise for its share of CPU threads.
Finished experiments are never submitted; a task resumes from ``RUNS`` when that folder is reachable on its
worker (a local cluster, a shared disk) and otherwise trains afresh in a temporary folder of the worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .cli import exit_status, int_at_least, nonblank_path
from .experiments import ROOT, check_plan, data_unavailable, is_complete, load_plan
from .files import write_bytes, write_text

RESULT_FILES = ("metrics/{name}.json", "per_example/{name}.npy", "samples/{name}.png", "notebooks/{name}.ipynb",
                "failed/{name}.txt")  # fmt: skip


def run_task(name: str, profile: str, runs: str, threads: int) -> dict[str, Any]:
    """On a Ray worker: run one experiment's notebook into a temporary results folder; return its files."""
    from . import replicate

    os.environ["OMP_NUM_THREADS"] = str(threads)
    scratch = Path(tempfile.mkdtemp(prefix=f"made-{name}-"))
    runs_dir = Path(runs)
    reachable = runs_dir.is_dir() and os.access(runs_dir, os.W_OK)
    runs_dir = runs_dir if reachable else scratch / "runs"
    results = scratch / "results"
    started = time.perf_counter()
    try:
        replicate.run_one(name, profile, results, runs_dir)
        files = {}
        for pattern in RESULT_FILES:
            path = results / pattern.format(name=name)
            if path.is_file():
                files[pattern.format(name=name)] = path.read_bytes()
        return {"name": name, "files": files, "seconds": time.perf_counter() - started, "resumable": reachable,
                "scratch_results": str(results.resolve()), "runs": str(runs_dir.resolve())}  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def moved_notebook(content: bytes, result: dict[str, Any], results: Path) -> bytes:
    """A notebook executed in the worker's scratch results folder, as it reads in ``results``: papermill's record of
    its own path, and the run folder it trained in when that folder outlives the task (its other paths are relative
    to the notebook's folder and stay as they are)."""
    scratch = Path(result["scratch_results"])
    old, new = os.path.relpath(scratch, ROOT), os.path.relpath(results.resolve(), ROOT)
    content = content.replace(f'"{old}'.encode(), f'"{new}'.encode())
    if result.get("resumable"):
        runs = Path(result["runs"])
        old, new = os.path.relpath(runs, scratch / "notebooks"), os.path.relpath(runs, results.resolve() / "notebooks")
        content = content.replace(f'"{old}\\"'.encode(), f'"{new}\\"'.encode())  # the injected parameter's source
        content = content.replace(f'"{old}"'.encode(), f'"{new}"'.encode())  # papermill's record of it
    return content


def write_result(result: dict[str, Any], results: Path) -> None:
    """Write a task's files into ``results`` (each atomically, the metrics last: they mark the experiment finished),
    pointing its notebook at ``results``."""
    for relative_path, content in sorted(result["files"].items(), key=lambda item: item[0].startswith("metrics/")):
        if relative_path.endswith(".ipynb"):
            content = moved_notebook(content, result, results)
        write_bytes(results / relative_path, content)
    if f"failed/{result['name']}.txt" not in result["files"]:
        (results / "failed" / f"{result['name']}.txt").unlink(missing_ok=True)


def submit(args: argparse.Namespace) -> int:
    """Submit every unfinished experiment of the request as one grid; write results as tasks finish."""
    import ray

    plan = load_plan()
    experiments = [e for e in check_plan(args.profile, args.only) if not data_unavailable(e)]
    todo = [e for e in experiments if not is_complete(e, args.results)]
    for experiment in experiments:
        if experiment not in todo:
            print(f"[skip] {experiment.name}: finished with the same recipe")
    address = os.environ.get("RAY_ADDRESS") or None
    started = time.time()
    ray.init(address=address, include_dashboard=False, num_cpus=None if address else args.cpus,
             logging_level="WARNING", log_to_driver=False)  # fmt: skip
    resources = ray.cluster_resources()
    where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
    print(f"through Ray: {len(todo)} experiment(s) submitted to {where} ({resources.get('CPU', 0):.0f} CPUs, "
          f"{resources.get('GPU', 0):.0f} GPUs)", flush=True)  # fmt: skip
    gpu = bool(plan.profiles[args.profile].get("gpu")) and resources.get("GPU", 0) >= 1
    task = ray.remote(run_task).options(num_gpus=1 if gpu else 0, num_cpus=args.threads, max_retries=1)
    runs = str(args.runs.resolve())
    pending = {task.remote(e.name, args.profile, runs, args.threads): e.name for e in todo}
    failed = []
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a task that died is reported; the others go on
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                write_text(args.results / "failed" / f"{name}.txt", f"Ray task failed: {reason}\n")
                failed.append(name)
                print(f"[FAILED] {name}: {reason}", flush=True)
                continue
            write_result(result, args.results)
            ok = f"failed/{name}.txt" not in result["files"]
            failed += [] if ok else [name]
            print(f"[{'done' if ok else 'FAILED'}] {name} in {result['seconds']:.0f} s "
                  f"({len(todo) - len(pending)}/{len(todo)}, {(time.time() - started) / 60:.1f} min)", flush=True)  # fmt: skip
    finally:
        ray.shutdown()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.ray_engine", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--results", type=nonblank_path, default=Path("results"))
    parser.add_argument("--runs", type=nonblank_path, default=Path("runs"))
    parser.add_argument("--only", default="")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (and Ray CPUs) per experiment")
    parser.add_argument(
        "--cpus", type=int_at_least(1), default=os.cpu_count(), help="CPUs of a local cluster (without RAY_ADDRESS)"
    )
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    return exit_status(lambda: submit(args))


if __name__ == "__main__":
    sys.exit(main())
