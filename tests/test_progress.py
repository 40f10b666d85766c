"""Where a run stands: read from its folder while it trains, after an interruption, and once trained."""

from __future__ import annotations

import dataclasses

from replication.experiments import load_data, load_plan
from replication.files import locked
from replication.progress import standing, standing_table
from replication.replicate import main as replicate_main
from replication.training.runs import LOCK, METRICS, train_run


def test_a_run_folder_reads_as_not_started_training_interrupted_and_trained(tmp_path):
    base = load_plan().experiment("uci_dna_single", "smoke")
    experiment = dataclasses.replace(base, recipe={**base.recipe, "max_epochs": 3, "patience": 5})
    folder = experiment.run_dir(tmp_path, "smoke")
    assert standing(experiment, tmp_path, "smoke").state == "not started"

    data = load_data(experiment)
    _, record = train_run(folder, data, *experiment.configs(data.dim), progress=False)
    trained = standing(experiment, tmp_path, "smoke")
    assert trained.state == "trained" and trained.epoch == record.epochs == 3 and trained.max_epochs == 3
    assert trained.best_epoch == record.best_epoch and trained.best_valid_nll == min(h["valid_nll"] for h in record.history)
    assert trained.look_ahead_left == 5 - (3 - record.best_epoch)
    assert abs(trained.train_hours * 3600 - record.train_seconds) < 1e-6 and trained.seconds_per_epoch > 0

    (folder / METRICS).unlink()  # a checkpoint without a record: an interrupted run
    assert standing(experiment, tmp_path, "smoke").state == "interrupted"
    with locked(folder / LOCK, "the test's trainer", wait=False):
        assert standing(experiment, tmp_path, "smoke").state == "training"
    assert standing(experiment, tmp_path, "smoke").state == "interrupted"  # the lock file stays, but no one holds it

    table = standing_table([trained, standing(base, tmp_path / "elsewhere", "smoke")])
    assert table["epoch"].tolist()[0] == 3 and str(table["epoch"].dtype) == "Int64"
    assert table["state"].tolist() == ["trained", "not started"]


def test_progress_lists_every_pending_experiment(tmp_path, capsys):
    code = replicate_main(["progress", "--profile", "smoke", "--results", str(tmp_path / "r"), "--runs", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "| experiment" in out
    for experiment in load_plan().for_profile("smoke"):
        assert f"| {experiment.name} " in out
    assert "not started" in out and "training" not in out.split("\n\n", 1)[1]
