"""The Makefile's replicate plumbing: parallel jobs share the cores, and listing needs no data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from replication.replicate import main as replicate_main

ROOT = Path(__file__).resolve().parents[1]


def dry_run(results: Path, *args: str) -> str:
    command = ["make", "--no-print-directory", "-n", *args, f"PY={sys.executable}", f"RESULTS={results}",
               "ONLY=mnist_2x500_1mask,mnist_1x500_4masks"]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_parallel_experiment_gets_its_share_of_the_cores(jobs, tmp_path):
    out = dry_run(tmp_path, f"-j{jobs}", "experiments")
    threads = re.findall(r"OMP_NUM_THREADS=(\d+) .* run (\w+)", out)
    assert sorted(name for _, name in threads) == ["mnist_1x500_4masks", "mnist_2x500_1mask"]
    assert {int(n) for n, _ in threads} == {max(1, len(os.sched_getaffinity(0)) // jobs)}


def test_only_what_is_left_to_do_is_launched():
    """On the committed results (both finished, notebooks current) `make replicate` launches no experiment."""
    assert "run mnist_" not in dry_run(ROOT / "results", "experiments")


def test_listing_experiments_needs_no_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MADE_DATA_DIR", str(tmp_path))  # empty: `check` would fail (or download), `list` must not
    monkeypatch.chdir(tmp_path)
    assert replicate_main(["list", "--profile", "cpu", "--only", "uci_adult_single"]) == 0
    seeds = [f"uci_adult_single-seed{s}" for s in range(1235, 1239)]  # a row's name selects all its seeds
    assert capsys.readouterr().out.split() == ["uci_adult_single", *seeds]
