"""The report: README.md is its template rendered with the committed results, so every number in it has one source."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import replication
from replication.errors import ConfigError, ReplicationError
from replication.experiments import parse_plan
from replication.report import Facts, render_readme

ROOT = Path(replication.__file__).parents[1]


def test_the_readme_is_its_template_rendered_with_the_committed_results():
    """A number typed into README.md, or a result that changed under it, makes the two differ."""
    assert (ROOT / "README.md").read_text() == render_readme(ROOT), "run `make replicate` (or report.write_readme)"


def test_a_changed_result_changes_the_readme(tmp_path):
    """The check above can fail: one finished run's test NLL moved by 0.5 nats moves the README."""
    for item in ("docs", "results"):
        shutil.copytree(ROOT / item, tmp_path / item, ignore=shutil.ignore_patterns("notebooks", "samples", "figures"))
    record = tmp_path / "results" / "paper" / "metrics" / "paper_mnist_1x8000_1mask.json"
    text = record.read_text()
    nats = re.search(r'"test_nll": \{\s*"nats": ([0-9.]+)', text)
    record.write_text(text.replace(nats.group(0), nats.group(0).replace(nats.group(1), str(float(nats.group(1)) + 0.5))))
    before, after = render_readme(ROOT), render_readme(tmp_path)
    changed = [line for line in after.splitlines() if line not in before.splitlines()]
    assert any("MADE 1 hidden layer, 1 mask" in line and "89.16" in line for line in changed), changed


def test_the_report_opens_with_every_row_of_the_papers_tables_and_stays_short():
    readme = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(readme) if line.startswith("| paper row"))
    end = next(i for i in range(start, len(readme)) if not readme[i].startswith("|"))
    assert len(readme) <= 250 and end <= 40 and end - start == 22  # header, separator, the paper's 20 rows
    paragraphs = "\n".join(readme).split("\n\n")
    prose = [p for p in paragraphs if not p.lstrip().startswith(("|", "```", "!", ">>>", "- "))]
    assert max(len(p.splitlines()) for p in prose) <= 8


def test_a_number_the_results_do_not_hold_stops_the_rendering():
    facts = Facts(ROOT)
    with pytest.raises(ReplicationError, match="which is no experiment"):
        facts.result("no_such_run")
    with pytest.raises(ReplicationError, match="has not finished"):
        facts.result("paper_mnist_2x8000_32masks")


def test_no_history_in_the_report():
    texts = [ROOT / "README.md", *(ROOT / "results").rglob("*.md"), *(ROOT / "docs").glob("*")]
    pattern = re.compile(r"this sitting|earlier run|before this change", re.IGNORECASE)
    assert [str(p.relative_to(ROOT)) for p in texts if pattern.search(p.read_text())] == []


def test_a_report_row_must_name_an_experiment_of_its_paper_row_in_its_profile():
    text = (ROOT / "replication" / "experiments.toml").read_text()
    row = '{ paper = "uci.dna.single", experiment = "uci_dna_single", profile = "cpu" }'
    for broken in (row.replace('"uci_dna_single"', '"uci_dna_masks"'), row.replace('"cpu"', '"paper"')):
        assert row in text
        with pytest.raises(ConfigError, match="report row 9"):
            parse_plan(text.replace(row, broken))
