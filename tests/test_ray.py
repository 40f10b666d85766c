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
