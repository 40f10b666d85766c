"""``make replicate-plain``: the profile's experiments without papermill, several at once on one device.

Meant for a GPU machine (which has torch but no papermill): each experiment runs as its own process, up to
``--parallel`` at a time sharing the device, with the same skip, resume and lock rules as ``make replicate``; then
the masks curve and the summary are written and, with ``--archive``, the results folder and the runs' logs are packed
into one ``.tar.gz`` (no checkpoints). Back on a machine with papermill, ``make replicate`` on the same results
folder trains nothing and draws the executed notebooks from the finished metrics.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import time
from functools import partial
from pathlib import Path

import torch

from .cli import exit_status, int_at_least, nonblank_path
from .curve import masks_curve
from .engine import run_guarded, unavailable
from .errors import ReplicationError
from .experiments import check_plan, data_unavailable, is_complete, load_plan, run_experiment
from .files import atomic_path
from .summary import write_summary
from .training.evaluate import plus_minus

LOGS = "logs"


def run_in_this_process(name: str, profile: str, results: Path, runs: Path, device: str | None) -> int:
    """One experiment in this process (no notebook), through the engine core; 1 when it failed."""
    experiment = load_plan().experiment(name, profile)

    def work() -> None:
        nll = run_experiment(name, profile, results, runs, device=device).test_nll
        print(f"{name}: test NLL {plus_minus(nll.nats, nll.stderr)}", flush=True)

    finished = run_guarded(name, results, work, partial(is_complete, experiment, results), unavailable(experiment))
    return 0 if finished else 1


def launch(name: str, args: argparse.Namespace, threads: int) -> subprocess.Popen:
    log = args.runs / LOGS / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "replication.plain_engine", "--profile", args.profile, "--results", str(args.results),
               "--runs", str(args.runs), "--one", name] + (["--device", args.device] if args.device else [])  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    with open(log, "a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def run_all(args: argparse.Namespace) -> int:
    """Every experiment of the request, ``args.parallel`` at a time; then the curve, the summary and the archive."""
    experiments = [e for e in check_plan(args.profile, args.only) if not data_unavailable(e)]
    pending = [e.name for e in experiments]
    threads = max(1, (os.cpu_count() or 1) // max(1, min(args.parallel, len(pending) or 1)))
    running: dict[str, subprocess.Popen] = {}
    failed = []
    started = time.time()
    print(f"{len(pending)} experiment(s), {args.parallel} at a time on {args.device or 'the default device'}; "
          f"logs in {args.runs / LOGS}", flush=True)  # fmt: skip
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            running[name] = launch(name, args, threads)
            print(f"[start] {name}", flush=True)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                print(f"[{'done' if proc.returncode == 0 else 'FAILED'}] {name} (after {(time.time() - started) / 60:.1f} min)",
                      flush=True)  # fmt: skip
                if proc.returncode != 0:
                    failed.append(name)
        time.sleep(1)
    try:
        masks_curve(args.profile, args.results, args.runs)
    except ReplicationError as exc:
        print(f"[skip] masks curve: {exc}")
    write_summary(args.results, args.profile)
    if args.archive:
        pack(args.archive, args.results, args.runs / LOGS)
        print(f"archive: {args.archive} ({args.archive.stat().st_size / 2**20:.1f} MiB)")
    print(f"{len(experiments) - len(failed)} of {len(experiments)} experiment(s) finished; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def pack(archive: Path, results: Path, logs: Path) -> None:
    """``results`` (without checkpoints or locks) and the logs, as one ``.tar.gz``."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = Path(info.name).name
        return None if name.endswith(".pt") or name == ".locks" or name.startswith(".") and name != "." else info

    with atomic_path(archive, suffix=".tmp.tar.gz") as tmp, tarfile.open(tmp, "w:gz") as tar:
        tar.add(results, arcname="results", filter=keep)
        if logs.is_dir():
            tar.add(logs, arcname="logs", filter=keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.plain_engine", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--results", type=nonblank_path, default=Path("results/paper"))
    parser.add_argument("--runs", type=nonblank_path, default=Path("runs"))
    parser.add_argument("--only", default="", help="comma-separated experiment names")
    parser.add_argument("--parallel", type=int_at_least(1), default=4, help="experiments running at once (sharing the device)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--archive", type=nonblank_path, default=None, help="write RESULTS and the logs to this .tar.gz")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one experiment in this process
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    if args.one:
        return exit_status(lambda: run_in_this_process(args.one, args.profile, args.results, args.runs, args.device))
    return exit_status(lambda: run_all(args))


if __name__ == "__main__":
    torch.backends.cuda.matmul.allow_tf32 = False  # the paper's numbers are fp32: no TF32 matmuls
    sys.exit(main())
