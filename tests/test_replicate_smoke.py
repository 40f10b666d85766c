"""`make replicate PROFILE=smoke` end to end: every notebook runs through papermill into a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import nbformat
import papermill
import pytest

from replication.curve import masks_curve
from replication.experiments import load_plan
from replication.replicate import COMPUTE_OFF, TRAIN_OFF, injected_cell, keep_inside_project

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


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> SimpleNamespace:
    """`make -j2 replicate PROFILE=smoke` and a plain one, at the same time, into the same folders (once for the
    module; tests that change what it wrote work on a copy)."""
    tmp_path = tmp_path_factory.mktemp("smoke")
    results, runs = tmp_path / "results", tmp_path / "runs"
    first, second = replicate(results, runs, "-j2"), replicate(results, runs)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs[0][-2000:] + outputs[1][-2000:]
    return SimpleNamespace(tmp_path=tmp_path, results=results, runs=runs, outputs=outputs)


def test_smoke_profile_twice_at_once_runs_every_notebook_once_and_a_rerun_writes_nothing(smoke):
    results, runs, tmp_path, outputs = smoke.results, smoke.runs, smoke.tmp_path, smoke.outputs
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


NAME = "mnist_1x500_32masks"  # a K-mask model of image data: every part of the document


def copy_of(smoke: SimpleNamespace, folder: Path) -> tuple[Path, Path]:
    """The smoke run's results and run folders copied side by side into ``folder`` (the notebooks' paths still hold)."""
    return shutil.copytree(smoke.results, folder / "results"), shutil.copytree(smoke.runs, folder / "runs")


def run_in_place(notebook: Path) -> None:
    """Run a saved notebook again where it lies, as a reader would: from its own folder, no parameters given."""
    papermill.execute_notebook(str(notebook), str(notebook), cwd=str(notebook.parent), kernel_name="python3",
                               progress_bar=False)  # fmt: skip


def without(folder: Path, *names: str) -> dict[str, tuple[int, bytes]]:
    """``snapshot(folder)`` but the files ``names`` (relative to it)."""
    return {path: state for path, state in snapshot(folder).items() if path not in names}


def printed(notebook: Path) -> str:
    """Everything a saved notebook's cells printed."""
    cells = nbformat.read(notebook, as_version=4).cells
    return "".join(o.get("text", "") for cell in cells if cell.cell_type == "code" for o in cell.outputs)


def test_an_experiment_notebook_run_again_where_it_lies_reads_its_result_and_never_trains(smoke, tmp_path):
    results, runs = copy_of(smoke, tmp_path)
    notebook, saved = results / "notebooks" / f"{NAME}.ipynb", f"notebooks/{NAME}.ipynb"
    before, checkpoints = without(results, saved), snapshot(runs)
    run_in_place(notebook)
    assert f"{NAME}: finished results found in ../metrics/{NAME}.json; skipping" in printed(notebook)
    assert without(results, saved) == before and snapshot(runs) == checkpoints  # nothing trained, nothing written

    (results / "metrics" / f"{NAME}.json").unlink()
    run_dir = load_plan().experiment(NAME, "smoke").run_dir(runs, "smoke")
    shutil.rmtree(run_dir)
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_in_place(notebook)
    assert error.value.ename == "NotFinished" and len(error.value.traceback) == 1  # one line, not a stack
    line = error.value.traceback[0]
    assert line.startswith(f"{NAME}: no finished result of its recipe in {results.resolve()}/metrics/")
    assert line.endswith(f"`make replicate PROFILE=smoke RESULTS={results.resolve()} ONLY={NAME}`")
    assert not run_dir.exists() and not (results / "metrics" / f"{NAME}.json").exists()


def test_the_masks_curve_run_again_where_it_lies_reads_the_saved_curve_and_never_computes(smoke, tmp_path):
    results, runs = copy_of(smoke, tmp_path)
    shutil.rmtree(runs)  # no checkpoints: only reading can succeed
    notebook, saved = results / "notebooks" / "masks_curve.ipynb", "notebooks/masks_curve.ipynb"
    before = without(results, saved)
    run_in_place(notebook)
    assert "masks curve: current, read from ../masks_curve.json" in printed(notebook)
    assert without(results, saved) == before

    (results / "masks_curve.json").unlink()
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_in_place(notebook)
    assert error.value.ename == "NotFinished" and len(error.value.traceback) == 1
    assert error.value.traceback[0].endswith(f"`make replicate PROFILE=smoke RESULTS={results.resolve()}`")
    assert without(results, saved) == {k: v for k, v in before.items() if k != "masks_curve.json"}


def outputs_of(notebook: nbformat.NotebookNode, kind: str) -> list[str]:
    """The text of every output of ``kind`` (``stream``, ``text/html`` or ``image/png``) of a notebook's cells."""
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    if kind == "stream":
        return [o.text for o in outputs if o.output_type == "stream"]
    return [o.data[kind] for o in outputs if kind in o.get("data", {})]


def test_an_executed_experiment_notebook_is_a_document_of_its_own(smoke):
    """Its title is its name; it shows its recipe, how training ended, its curve, its NLL against the paper and its
    sample grid with the caption of how it was drawn; it is saved to only read, papermill's record kept as it ran."""
    notebook = nbformat.read(smoke.results / "notebooks" / f"{NAME}.ipynb", as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith(f"# {NAME}\n\n1x500 ")
    assert injected_cell(notebook)["source"].splitlines()[-1] == TRAIN_OFF
    parameters = notebook.metadata.papermill.parameters
    assert parameters["results_dir"] == ".." and parameters["runs_dir"] == "../../runs" and "train" not in parameters
    tables = outputs_of(notebook, "text/html")
    assert any("hidden_sizes" in t and "test_masks" in t and "patience" in t for t in tables)  # the recipe
    assert any("paper NLL" in t and "MADE 1 hidden layer, 32 masks" in t for t in tables)  # against the paper
    printed_text = "".join(outputs_of(notebook, "stream"))
    assert "2 epochs, best epoch " in printed_text and "stopped by the epoch cap (2)" in printed_text
    assert f"{NAME} (test NLL " in printed_text and "100 samples from the 32-mask ensemble (masks 0 to 31)" in printed_text
    assert len(outputs_of(notebook, "image/png")) == 2  # the training curve and the sample grid
    record = json.loads((smoke.results / "metrics" / f"{NAME}.json").read_text())
    assert record["samples_drawn"].startswith("100 samples from the 32-mask ensemble")
    for other in ("masks_curve", "summary"):
        saved = nbformat.read(smoke.results / "notebooks" / f"{other}.ipynb", as_version=4)
        assert saved.metadata.papermill.parameters["results_dir"] == ".."
    curve = nbformat.read(smoke.results / "notebooks" / "masks_curve.ipynb", as_version=4)
    assert injected_cell(curve)["source"].endswith(COMPUTE_OFF)


def test_a_notebook_saved_in_the_project_names_no_runs_folder_outside_it(smoke):
    """Checkpoints kept outside the project (``RUNS=$HOME/...``) must not put a path that climbs out of it into a
    committed notebook: the saved one names the project's own runs folder. Here the project is the smoke results."""
    saved = smoke.results / "notebooks" / f"{NAME}.ipynb"
    content, folder = json.loads(saved.read_text()), saved.parent
    as_run = json.loads(json.dumps(content))
    keep_inside_project(content, folder, root=smoke.tmp_path)  # runs beside the results: inside, left alone
    assert content == as_run

    keep_inside_project(content, folder, root=smoke.results)  # runs outside this project
    assert content["metadata"]["papermill"]["parameters"]["runs_dir"] == "../runs"
    assert 'runs_dir = "../runs"  # its checkpoints were kept outside the project\n' in injected_cell(content)["source"]
    assert "../../runs" not in json.dumps(content)
    others = [[line for line in injected_cell(c)["source"] if not line.startswith("runs_dir")] for c in (content, as_run)]
    assert others[0] == others[1] and others[0][-1] == TRAIN_OFF  # only the runs folder changed
