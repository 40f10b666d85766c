"""The one-change table, the official-trainer differences table and the paper's 500-unit masks figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import replication
from conftest import fake_metrics
from replication.errors import ConfigError
from replication.experiments import load_plan, parse_plan
from replication.files import write_json
from replication.summary import inputs_digest, results_readme, write_summary
from replication.tables import all_tables, official_trainer_table, to_markdown, trained_masks_table, variations_table

PLAN = load_plan()


def finish(results, name: str, per_example: np.ndarray | None = None, nll: float = 92.0, profile: str = "cpu") -> None:
    """A finished run of ``name`` in ``results`` (its per-example test NLLs when given)."""
    experiment = PLAN.experiment(name, profile)
    nats = float(per_example.mean()) if per_example is not None else nll
    history = [{"epoch": 1, "train_nll": nats + 2, "valid_nll": nats + 1}]
    write_json(
        fake_metrics(experiment, test_nll={"nats": nats}, history=history, best_epoch=1), results / "metrics" / f"{name}.json"
    )
    if per_example is not None:
        (results / "per_example").mkdir(exist_ok=True)
        np.save(results / "per_example" / f"{name}.npy", per_example.astype(np.float32))


def test_a_variant_is_set_against_the_row_it_varies_with_a_paired_stderr(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(94.0, 10.0, 1000)
    finish(tmp_path, "mnist_1x500_32masks", base)
    noise = rng.normal(0, 1.0, 1000)
    finish(tmp_path, "mnist_1x500_32masks_full_validation", base - 0.5 + noise)
    finish(tmp_path, "mnist_1x500_1mask_paper_recipe")  # its base has not finished: no row
    row = variations_table(tmp_path, "cpu").set_index("variant").loc["mnist_1x500_32masks_full_validation"]
    assert row["varies"] == "mnist_1x500_32masks (seed 1234)" and row["what differs"] == "valid_masks 4 -> 32"
    assert row["difference"] == pytest.approx(-0.5, abs=0.1)
    exact = np.std((base - 0.5 + noise).astype(np.float32).astype(np.float64) - base.astype(np.float32), ddof=1) / np.sqrt(1000)
    assert row["paired stderr"] == pytest.approx(exact, rel=1e-12) and row["z"] < -10  # measured: equal to 1e-16
    assert len(variations_table(tmp_path, "cpu")) == 1


def test_every_official_difference_has_a_row_with_its_effect_or_why_not(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(94.0, 10.0, 1000)
    finish(tmp_path, "mnist_1x500_32masks", base)
    finish(tmp_path, "mnist_1x500_32masks_full_validation", base + 0.3)
    for run, nll in zip(PLAN.seed_runs("mnist_1x500_1mask", "cpu"), (92.0, 93.0, 94.0)):
        finish(tmp_path, run.name, nll=nll)
    table = official_trainer_table(tmp_path, "cpu", variations_table(tmp_path, "cpu"))
    effects = dict(zip(table.iloc[:, 0], table.iloc[:, 1]))
    assert len(effects) == len(PLAN.official_trainer) == 6
    text = " | ".join(effects.values())
    assert "mnist_1x500_32masks_full_validation: +0.30 ± 0.00 against mnist_1x500_32masks" in text
    assert "mnist_1x2000_32masks_full_validation: not run yet" in text
    assert "paper_mnist_1x8000_1mask_official_adagrad: measured in the paper profile (its results folder)" in text
    assert "mnist_1x500_1mask: sd 1.00 over 3 seeds" in text
    assert "mnist_1x500_32masks_official_schedule: not run yet" in text
    assert "mnist_1x500_1mask_fixed_order: not run yet" in text


def test_no_difference_that_a_500_unit_cpu_run_can_measure_is_left_unmeasured():
    """Every row names the runs that measure it (only a row no run at this scale can measure may give a reason)."""
    assert all(entry.get("measured_by") for entry in PLAN.official_trainer)


def test_the_trained_masks_figure_has_every_finished_k(tmp_path):
    for k, name in enumerate(PLAN.curve["trained_with_k"]):
        finish(tmp_path, name, nll=95.0 - k)
    table = trained_masks_table(tmp_path, "cpu")
    assert table["masks K"].tolist() == [1, 2, 4, 8, 16, 32] and table["test NLL"].tolist()[-1] == 90.0
    write_summary(tmp_path, "cpu")
    readme = (tmp_path / "README.md").read_text()
    assert (tmp_path / "figures" / "nll_vs_trained_masks.png").stat().st_size > 0
    assert "figures/nll_vs_trained_masks.png" in readme and "## What each difference from the official trainer" in readme


@pytest.mark.parametrize("varies", ["no_such_run", "mnist_1x500_32masks_full_validation", "paper_mnist_1x8000_1mask"])
def test_varies_must_name_another_run_of_the_same_profiles(varies):
    text = (Path(replication.__file__).parent / "experiments.toml").read_text()
    entry = "[experiments.mnist_1x500_32masks_full_validation]"
    broken = text.replace('varies = "mnist_1x500_32masks"\n', f'varies = "{varies}"\n', 1)
    assert broken != text and entry in broken
    with pytest.raises(ConfigError, match="varies must name another experiment"):
        parse_plan(broken)


@pytest.mark.parametrize("folder, profile", [("results", "cpu"), ("results/paper", "paper")])
def test_every_committed_table_is_what_the_committed_results_give(folder, profile):
    """Each committed table, regenerated from the committed metrics and per-example NLLs, is the same to the byte."""
    root = Path(replication.__file__).parents[1] / folder
    for name, frame in all_tables(root, profile).items():
        assert frame.to_csv(index=False) == (root / f"{name}.csv").read_text(), name
        assert to_markdown(frame) == (root / f"{name}.md").read_text(), name


@pytest.mark.parametrize("folder, profile", [("results", "cpu"), ("results/paper", "paper")])
def test_every_committed_results_readme_is_what_the_committed_results_give(folder, profile):
    """Each number of ``results/README.md`` is drawn from the committed results: regenerated, it is the same text."""
    root = Path(replication.__file__).parents[1] / folder
    text = results_readme(root, profile, all_tables(root, profile))
    assert (root / "README.md").read_text() == text + f"\n<!-- summary inputs: {inputs_digest(root, profile)} -->\n"
