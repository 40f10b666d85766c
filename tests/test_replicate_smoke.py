"""`make replicate PROFILE=smoke` end to end: every notebook runs through papermill into a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat

from replication.curve import masks_curve
from replication.experiments import load_plan

ROOT = Path(__file__).resolve().parents[1]


def written_by(folder: Path, marker: str) -> list[str]:
    """Files under ``folder`` whose text mentions ``marker`` (a smoke run's temporary path)."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".ipynb", ".md", ".csv"}]
    return [str(p) for p in files if marker in p.read_text(errors="ignore")]


def check_smoke_outputs(results: Path, runs: Path, tmp_path: Path, stdout: str) -> None:
    """Every notebook ran without error and every output of the smoke profile is there; results/ is untouched."""
    assert not written_by(ROOT / "results", str(tmp_path))  # the committed results are never touched
    assert not written_by(ROOT / "results", '"profile": "smoke"')

    smoke = load_plan().for_profile("smoke")
    for experiment in smoke:
        metrics = json.loads((results / "metrics" / f"{experiment.name}.json").read_text())
        assert metrics["identity"] == experiment.identity() and metrics["split"] == "test"
        assert metrics["epochs"] <= 2 and metrics["test_nll"]["n"] == 100 and metrics["test_nll"]["nats"] > 0
        notebook = nbformat.read(results / "notebooks" / f"{experiment.name}.ipynb", as_version=4)
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert outputs and not any(o.output_type == "error" for o in outputs)
        if experiment.dataset == "binarized_mnist":
            assert (results / "samples" / f"{experiment.name}.png").stat().st_size > 1000
    for name in ("masks_curve", "summary"):
        assert (results / "notebooks" / f"{name}.ipynb").is_file()
    curve = (results / "masks_curve.csv").read_text().splitlines()
    assert curve[0].startswith("experiment,masks,test NLL") and len(curve) == 1 + len(
        load_plan().profiles["smoke"]["mask_counts"]
    )
    assert (results / "figures" / "nll_vs_masks.png").stat().st_size > 1000
    before = (results / "masks_curve.json").stat().st_mtime_ns
    assert masks_curve("smoke", results, runs)["masks"].tolist() == load_plan().profiles["smoke"]["mask_counts"]
    assert (results / "masks_curve.json").stat().st_mtime_ns == before  # a finished curve is not recomputed
    mnist = (results / "nll_mnist.md").read_text()
    assert "mnist_1x500_1mask" in mnist and "reduced CPU stand-in" in mnist and " 94.50 |" in mnist
    uci = (results / "nll_uci.csv").read_text()
    assert "uci_dna_single" in uci
    gain = (results / "ensemble_gain.csv").read_text()
    assert 'mnist_1x500_32masks,"1x500 relu, direct",ordering + connectivity' in gain and ",mnist_1x500_1mask," in gain
    readme = (results / "README.md").read_text()
    assert "## Binarized MNIST" in readme and "figures/nll_vs_masks.png" in readme and "samples/" in readme
    assert "nll_mnist" in stdout  # the tables are printed in the terminal


def test_replicate_refuses_an_unknown_profile_before_any_work(tmp_path):
    command = ["make", "--no-print-directory", "replicate", "PROFILE=nope", f"RESULTS={tmp_path}/r", f"RUNS={tmp_path}/u"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"MAKEFLAGS": ""}, timeout=300)
    assert done.returncode != 0 and "unknown profile 'nope'" in done.stderr
    assert not (tmp_path / "r").exists()


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def replicate(results: Path, runs: Path, *extra: str) -> subprocess.Popen:
    command = ["make", "--no-print-directory", *extra, "replicate", "PROFILE=smoke", f"RESULTS={results}", f"RUNS={runs}"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | {"MAKEFLAGS": ""})  # fmt: skip


def test_smoke_profile_twice_at_once_runs_every_notebook_once_and_a_rerun_writes_nothing(tmp_path):
    """`make -j2 replicate PROFILE=smoke` and a plain one, at the same time, into the same folders."""
    results, runs = tmp_path / "results", tmp_path / "runs"
    first, second = replicate(results, runs, "-j2"), replicate(results, runs)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs[0][-2000:] + outputs[1][-2000:]
    check_smoke_outputs(results, runs, tmp_path, outputs[0] + outputs[1])
    for experiment in load_plan().for_profile("smoke"):
        runs_of = sum(out.count(f"[run] {experiment.name}\n") for out in outputs)
        assert runs_of == 1, (experiment.name, outputs)
    assert "finished by another process" in outputs[0] + outputs[1]

    before = snapshot(results)
    again = replicate(results, runs)
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output[-2000:]
    assert "[skip] summary" in output and "[skip] masks_curve" in output
    assert snapshot(results) == before  # nothing rewritten, not even with the same bytes
