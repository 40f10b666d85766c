"""`make replicate ENGINE=ray` on a real local Ray cluster: the same numbers as the local engine, results written by
the driver from the files each task returns."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from replication.experiments import run_experiment

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["uci_dna_single", "uci_dna_masks"]
GRID = ["uci_dna_single", "uci_dna_single-seed1235", "uci_dna_masks"]  # the smoke profile has two seeds of the first


def test_replicate_through_ray_equals_the_local_engine(tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    command = ["make", "--no-print-directory", "replicate", "ENGINE=ray", "PROFILE=smoke", f"RESULTS={results}",
               f"RUNS={runs}", f"ONLY={','.join(NAMES)}"]  # fmt: skip
    env = os.environ | {"MAKEFLAGS": "", "RAY_ADDRESS": ""}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "through Ray: 3 experiment(s) submitted to a local Ray cluster" in done.stdout  # experiments x seeds
    for name in GRID:
        ours = json.loads((results / "metrics" / f"{name}.json").read_text())
        local = run_experiment(name, "smoke", tmp_path / "local", tmp_path / "local-runs", device="cpu", progress=False)
        assert ours["test_nll"]["nats"] == pytest.approx(local.test_nll.nats, abs=1e-6)
        notebook = (results / "notebooks" / f"{name}.ipynb").read_text()
        assert "made-" not in notebook  # the worker's scratch folder is not what the notebook points at
    assert (results / "README.md").is_file() and (results / "nll_uci.md").is_file()
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert again.returncode == 0 and "through Ray: 0 experiment(s)" in again.stdout  # finished ones are not resubmitted


def test_a_notebook_from_a_workers_scratch_folder_points_at_the_results_and_the_run_folder(tmp_path):
    """Moved from the worker's scratch results into ``results``: papermill's record of its path and the run folder it
    trained in (a parameter relative to the notebook's folder) are those seen from its new place."""
    from replication.ray_engine import moved_notebook
    from replication.replicate import NOTEBOOKS, relative

    scratch, results, runs = tmp_path.resolve() / "made-x" / "results", tmp_path.resolve() / "results", tmp_path / "runs"
    worker = {"results_dir": relative(scratch, scratch / "notebooks"), "runs_dir": relative(runs, scratch / "notebooks")}
    output = os.path.relpath(scratch / "notebooks" / "x.ipynb", NOTEBOOKS.parent)
    notebook = {"cells": [{"cell_type": "code", "source": [f'runs_dir = "{worker["runs_dir"]}"\n']}],
                "metadata": {"papermill": {"parameters": worker, "output_path": output}}}  # fmt: skip
    result = {"scratch_results": str(scratch), "runs": str(runs.resolve()), "resumable": True}
    moved = json.loads(moved_notebook(json.dumps(notebook, indent=1).encode(), result, results))
    runs_dir = relative(runs, results / "notebooks")
    assert runs_dir != worker["runs_dir"] and moved["cells"][0]["source"] == [f'runs_dir = "{runs_dir}"\n']
    assert moved["metadata"]["papermill"] == {
        "parameters": {"results_dir": "..", "runs_dir": runs_dir},
        "output_path": os.path.relpath(results / "notebooks" / "x.ipynb", NOTEBOOKS.parent),
    }
