"""No committed file under results/ or notebooks/ holds an absolute path of any machine."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from replication.experiments import load_plan
from replication.training.console import worth_a_line

ROOT = Path(__file__).resolve().parents[1]
# An absolute path: this checkout's own location, or a path under the usual top-level folders of a machine.
ABSOLUTE = re.compile(rb"(?<![A-Za-z0-9_.~+/-])(/(home|work|tmp|Users|root|mnt|opt|srv|var|private)/|[A-Z]:\\\\Users)")


def committed_files(*folders: str) -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--", *folders], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in listed.stdout.splitlines() if (ROOT / line).is_file()]


def offending(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        content = path.read_bytes()
        for pattern in (ABSOLUTE, re.compile(re.escape(str(ROOT).encode()))):
            if match := pattern.search(content):
                found.append(f"{path.name}: {content[max(match.start() - 40, 0) : match.end() + 40]!r}")
                break
    return found


def test_no_committed_result_or_notebook_holds_an_absolute_path():
    files = committed_files("results", "notebooks")
    assert len(files) > 50
    assert offending(files) == []


def test_the_scan_finds_an_absolute_path(tmp_path):
    planted = tmp_path / "metrics.json"
    planted.write_text('{"data": {"source": "/home/someone/data/dna.npz"}}')
    clean = tmp_path / "clean.json"
    clean.write_text('{"samples": "samples/mnist.png", "url": "https://example.org/work/x", "note": "2/3 nats"}')
    assert len(offending([planted])) == 1 and offending([clean]) == []


def notebook_outputs(path: Path) -> list[dict]:
    content = json.loads(path.read_text())
    return [o for cell in content["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]


def test_every_executed_experiment_notebook_shows_its_curve_and_stays_small():
    plan = load_plan()
    notebooks = [p for p in committed_files("results") if p.suffix == ".ipynb" and p.stem in plan.experiments]
    assert len(notebooks) >= 20
    for path in notebooks:
        outputs = notebook_outputs(path)
        images = sum("image/png" in o.get("data", {}) for o in outputs)
        image_data = plan.experiments[path.stem]["dataset"] == "binarized_mnist"
        record = path.parents[1] / "metrics" / f"{path.stem}.json"
        completed = record.is_file() and "completions" in json.loads(record.read_text())
        assert images == 1 + image_data + completed, path.name  # the curve, the samples and completions for images
        assert sum(o.get("name") == "stderr" for o in outputs) <= 50, path.name
        assert path.stat().st_size < 1.5 * 2**20, path.name
        assert not any(o.get("output_type") == "error" for o in outputs), path.name


def test_progress_prints_a_few_dozen_lines_at_most():
    assert [e for e in range(1, 20) if worth_a_line(e)] == [1, 2, 4, 8, 16]
    assert sum(worth_a_line(e) for e in range(1, 3001)) <= 45


def test_the_raster_ordered_run_has_its_completions_committed_and_shown():
    record = json.loads((ROOT / "results" / "metrics" / "mnist_1x500_1mask_natural_order.json").read_text())
    figure = record["completions"]["figure"]
    assert (ROOT / "results" / figure).stat().st_size > 0 and record["completions"]["n"] == 10_000
    assert f"({figure})" in (ROOT / "results" / "README.md").read_text()
