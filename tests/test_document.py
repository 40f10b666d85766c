"""An experiment's notebook as a document: its title, recipe table, stop line and the caption of its sample grid, and
the grid itself drawn from the masks its test NLL averages."""

from __future__ import annotations

import pytest
import torch

from conftest import fake_metrics, make_model
from replication import experiments
from replication.document import recipe_table, samples_caption, stop_line, title
from replication.errors import NotFinished
from replication.experiment_record import ExperimentRecord
from replication.experiments import UNRECORDED_DRAW, load_plan, run_experiment, write_samples
from replication.model.sampling import sample_ensemble
from replication.training.data import BinaryDataset
from replication.training.evaluate import NLL

PLAN = load_plan()


def record(name: str = "mnist_1x500_32masks", **fields) -> ExperimentRecord:
    """The record of a finished ``name`` of the cpu profile (``fields`` overriding), as read from its JSON."""
    return ExperimentRecord.from_dict(fake_metrics(PLAN.experiment(name, "cpu"), **fields), "test")


def test_a_grid_recorded_without_how_it_was_drawn_is_captioned_as_drawn_from_mask_0():
    """Every grid of a record without ``samples_drawn`` was drawn from mask 0 with seed 0, even a K-mask model's."""
    old = samples_caption(record(samples="samples/mnist_1x500_32masks.png"))
    assert old.startswith("mnist_1x500_32masks (test NLL 90.00 ± 0.30 nats, 32-mask ensemble): ")
    assert UNRECORDED_DRAW in old and "mask 0" in old and "manual_seed(0)" in old
    assert "not from the 32-mask ensemble its test NLL averages" in old
    single = samples_caption(record("mnist_1x500_1mask", samples="samples/mnist_1x500_1mask.png"))
    assert "mask 0" in single and "ensemble" not in single  # a one-mask model's grid is of its one mask


def test_a_grid_drawn_from_the_ensemble_says_so():
    drawn = experiments.drawn_text(range(32), 100, 0)
    new = samples_caption(record(samples="samples/mnist_1x500_32masks.png", samples_drawn=drawn))
    assert drawn in new and "one mask drawn uniformly per sample" in new and "not from" not in new


def test_the_record_keeps_how_its_grid_was_drawn():
    drawn = experiments.drawn_text(range(32), 100, 0)
    raw = fake_metrics(PLAN.experiment("mnist_1x500_32masks", "cpu"), samples="samples/x.png", samples_drawn=drawn)
    again = ExperimentRecord.from_dict(raw, "test").to_dict()
    assert again["samples_drawn"] == drawn and list(again).index("samples_drawn") == list(again).index("samples") + 1
    assert "samples_drawn" not in record().to_dict()  # at None, not written: a record without it writes back as it was


def test_write_samples_draws_the_masks_its_test_nll_averages(tmp_path, monkeypatch):
    """A K-mask model's grid is its test ensemble's samples (one mask per sample), titled with its name, test NLL and
    how it was drawn; a one-mask model's is its mask 0's."""
    drawn_grids = []
    monkeypatch.setattr(experiments, "save_grid", lambda samples, path, shape, title, title_size: drawn_grids.append(
        (samples, title)))  # fmt: skip
    data = BinaryDataset("tiny", *(torch.zeros(4, 16),) * 3, source="test", sha256="0", image_shape=(4, 4))
    nll = NLL(91.5, 0.25, 0.1, 4, 4)
    model = make_model(16, num_masks=4, order_agnostic=True, connectivity_agnostic=True)
    path, drawn = write_samples(model, data, tmp_path / "samples" / "m.png", "m", nll, test_masks=3)
    assert path == "samples/m.png" and drawn.startswith("100 samples from the 3-mask ensemble (masks 0 to 2): one mask")
    samples, grid_title = drawn_grids[-1]
    assert (samples == sample_ensemble(model, 100, [0, 1, 2], torch.Generator().manual_seed(0)).numpy()).all()
    assert grid_title.startswith("m: test NLL 91.50 ± 0.25 nats\n") and "3-mask ensemble" in grid_title
    single = make_model(16, num_masks=1)
    _, drawn = write_samples(single, data, tmp_path / "samples" / "s.png", "s", nll, test_masks=1)
    assert (
        drawn == UNRECORDED_DRAW and (drawn_grids[-1][0] == single.sample(100, 0, torch.Generator().manual_seed(0)).numpy()).all()
    )


def test_the_recipe_table_lists_every_recorded_field_and_the_test_masks():
    table = recipe_table(record()).set_index("field")
    assert {"hidden_sizes", "num_masks", "order_agnostic", "optimizer", "lr", "patience", "test_masks"} <= set(table.index)
    assert table.loc["num_masks", "value"] == "32" and table.loc["test_masks", "value"] == "32"
    assert table.loc["lr", "part"] == "training" and table.loc["num_masks", "part"] == "model"
    assert table["meaning"].str.len().min() > 0  # every field says what it is


def test_the_stop_line_says_why_training_ended():
    early = stop_line(record(epochs=45, best_epoch=15, stopped_early=True, train_seconds=600.0))
    assert early.startswith("45 epochs, best epoch 15") and "stopped early: 30 epochs (the look-ahead)" in early
    assert "10.0 min of training on cpu (x86_64 2 cpus)" in early
    capped = stop_line(record(epochs=1000, best_epoch=990, stopped_early=False))
    assert "stopped by the epoch cap (1000)" in capped and "not converged" in capped


def test_the_title_is_the_experiments_own_name_and_its_paper_number():
    experiment = PLAN.experiment("mnist_1x500_4masks", "cpu")
    text = title(experiment, "cpu")
    head, description = text.splitlines()[:3:2]
    assert head == "# mnist_1x500_4masks" and description.startswith("ablation: 4 masks")
    row, nll = PLAN.reference(experiment.paper)
    assert f"*{row}*: {nll:.2f} nats" in text and "never trains" in text


def test_a_notebook_that_only_reads_stops_with_one_line_naming_the_command_that_trains(tmp_path):
    """``train=False`` without a finished result: one line naming the experiment, its folder and the command; nothing
    is trained and no folder is created."""
    results = tmp_path / "results"
    with pytest.raises(NotFinished) as error:
        run_experiment("mnist_1x500_1mask", "smoke", results, tmp_path / "runs", train=False)
    where = results.resolve()
    assert str(error.value) == (
        f"mnist_1x500_1mask: no finished result of its recipe in {where}/metrics/ (profile smoke); this notebook only "
        f"reads results: train it with `make replicate PROFILE=smoke RESULTS={where} ONLY=mnist_1x500_1mask`"
    )
    assert error.value._render_traceback_() == [str(error.value)]
    assert not (tmp_path / "runs").exists() and not results.exists()
