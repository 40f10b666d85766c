"""The experiment plan: every recipe is valid and runs as written; bad requests stop before training."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import fake_metrics
from replication.curve import masks_curve
from replication.errors import DataError, ReplicationError
from replication.experiment_record import ExperimentRecord
from replication.experiments import Experiment, check_plan, finished_metrics, load_data, load_plan, parse_plan
from replication.files import write_json, write_text
from replication.model.made import MADE
from replication.replicate import main as replicate_main
from replication.summary import results_readme
from replication.tables import TABLES, cost_table, ensemble_gain_table, nll_table, one_mask_twin, verdict
from replication.training.data import BinaryDataset
from replication.training.record import write_record
from replication.training.runs import train_run
from replication.training.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
PLAN = load_plan()
ALL = [(name, profile) for name, entry in PLAN.experiments.items() for profile in entry["profiles"]]


def test_paper_numbers_are_the_cited_ones():
    assert PLAN.reference("mnist.made_1hl_1mask") == ("MADE 1 hidden layer, 1 mask", 88.40)
    assert PLAN.reference("mnist.made_2hl_32masks")[1] == 86.41
    assert PLAN.reference("uci.dna.mask_sampling")[1] == 79.66
    assert set(PLAN.paper["uci"]) - {"table"} == {"adult", "connect4", "dna", "mushrooms", "nips", "ocr_letters", "rcv1", "web"}


def test_profiles_cover_what_the_replication_promises():
    cpu = {e.name: e for e in PLAN.for_profile("cpu")}
    assert {e.dataset for e in cpu.values()} >= {
        "binarized_mnist",
        "adult",
        "connect4",
        "dna",
        "mushrooms",
        "nips",
        "ocr_letters",
    }
    for data in ("adult", "connect4", "dna", "mushrooms", "nips", "ocr_letters"):
        keys = {e.paper for e in cpu.values() if e.dataset == data}
        assert keys == {f"uci.{data}.single", f"uci.{data}.mask_sampling"}, data
    paper = PLAN.for_profile("paper")
    assert any(e.recipe["hidden_sizes"] == [8000, 8000] and e.architecture == "paper" for e in paper)
    for profile in ("smoke", "cpu", "paper"):  # every profile draws the masks curve of at least one model
        assert set(PLAN.curve["experiments"]) & {e.name for e in PLAN.for_profile(profile)}, profile
    assert all(e.recipe["max_epochs"] <= 2 and e.subset for e in PLAN.for_profile("smoke"))


def tiny(experiment: Experiment, dim: int) -> BinaryDataset:
    import torch

    g = torch.Generator().manual_seed(0)
    split = [(torch.rand(n, dim, generator=g) < 0.3).float() for n in (30, 10, 10)]
    return BinaryDataset(experiment.dataset, *split, source="memory", sha256="none")


OPTIMIZER_CLASSES = {"adam": "Adam", "adagrad": "Adagrad", "adagrad_official": "OfficialAdagrad", "sgd": "SGD"}


@pytest.mark.parametrize("name, profile", ALL)
def test_every_recipe_runs_as_written_for_one_epoch(name, profile):
    """The exact recipe (architecture, masks, optimizer...) of every experiment, one epoch on tiny data."""
    experiment = PLAN.experiment(name, profile)
    dim = {"binarized_mnist": 784}.get(experiment.dataset, 24)
    model = MADE(experiment.model_config(dim))
    config = experiment.train_config()
    config.max_epochs = 1
    trainer = Trainer(model, tiny(experiment, dim), config, progress=False)
    result = trainer.run()
    assert result.epochs == 1
    built = {**dataclasses.asdict(model.config), **dataclasses.asdict(config), **dataclasses.asdict(experiment.configs(dim)[2])}
    differs = {k: (v, built[k]) for k, v in experiment.recipe.items() if built[k] != v and k != "max_epochs"}
    assert differs == {}  # every field: optimizer, lr, orderings, masks, validation and test ensembles, schedules
    assert type(trainer.optimizer).__name__ == OPTIMIZER_CLASSES[experiment.recipe["optimizer"]]
    assert {group["lr"] for group in trainer.optimizer.param_groups} == {experiment.recipe["lr"]}
    nll = -model.ensemble_log_prob(tiny(experiment, dim).test[:2], min(2, experiment.recipe["test_masks"]))
    assert nll.isfinite().all()


def test_verdicts():
    assert verdict(88.0, 88.4) == "reproduced" and verdict(86.0, 88.4) == "better" and verdict(90.0, 88.4) == "gap"


@pytest.mark.parametrize(
    "ours, expected",
    [(89.0, "reproduced"), (87.0, "reproduced"), (89.0 + 1e-9, "gap"), (87.0 - 1e-9, "better"), (88.5, "reproduced")],
)
def test_reproduced_means_within_exactly_one_nat_on_either_side(ours, expected):
    assert verdict(ours, 88.0) == expected


def test_rcv1_and_web_are_experiments_reported_as_unavailable_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MADE_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    monkeypatch.chdir(tmp_path)  # no ./data/ folder here
    table = nll_table(tmp_path, "cpu", "uci")
    missing = table[table["data set"].isin(["rcv1", "web"])]
    assert len(missing) == 4 and set(missing["verdict"]) == {"not run: data not available offline"}
    assert set(missing["experiment"]) == {"uci_rcv1_single", "uci_rcv1_masks", "uci_web_single", "uci_web_masks"}
    assert set(table[table["data set"] == "dna"]["verdict"]) == {"not run yet"}


def test_each_k_mask_experiment_finds_the_same_network_with_one_mask():
    experiments = load_plan().for_profile("cpu")
    twins = {e.name: getattr(one_mask_twin(e, experiments), "name", None) for e in experiments if e.recipe["num_masks"] != 1}
    assert twins["mnist_1x500_32masks"] == "mnist_1x500_1mask"
    assert twins["mnist_1x500_32masks_order_only"] == "mnist_1x500_1mask"
    assert twins["mnist_2x500_32masks"] == "mnist_2x500_1mask"
    assert twins["mnist_1x2000_32masks"] == "mnist_1x2000_1mask"
    assert twins["uci_dna_masks"] is None  # its 1-mask row uses other regularization: not the same network
    paper = load_plan().for_profile("paper")
    twin = one_mask_twin(load_plan().experiment("paper_mnist_1x8000_32masks_cpu", "paper"), paper)
    assert twin.name == "paper_mnist_1x8000_1mask"  # validation masks and cap differ: still the same network
    official = one_mask_twin(load_plan().experiment("paper_mnist_1x8000_32masks", "paper"), paper)
    assert official.name == "paper_mnist_1x8000_1mask_official_adagrad"  # the optimizer is part of the network's recipe


def test_cost_table_says_whether_a_run_stopped_early_or_at_its_epoch_cap(tmp_path):
    plan = load_plan()
    (tmp_path / "metrics").mkdir()
    for name, stopped_early in (("mnist_1x500_32masks", False), ("mnist_1x500_1mask", True)):
        experiment = plan.experiment(name, "cpu")
        epochs = 9 if stopped_early else experiment.recipe["max_epochs"]
        metrics = fake_metrics(experiment, epochs=epochs, stopped_early=stopped_early)
        write_json(metrics, tmp_path / "metrics" / f"{name}.json")
    stops = dict(zip(*cost_table(tmp_path, "cpu")[["experiment", "stopped by"]].values.T))
    cap = plan.experiment("mnist_1x500_32masks", "cpu").recipe["max_epochs"]
    assert stops == {"mnist_1x500_32masks": f"epoch cap ({cap})", "mnist_1x500_1mask": "early stopping"}


def test_ensemble_gain_is_twin_minus_ensemble_with_a_paired_standard_error(tmp_path):
    plan = load_plan()
    rng = np.random.default_rng(0)
    twin_nll = rng.normal(91.6, 10.0, size=500)
    for name, per_example in (("mnist_1x500_32masks", twin_nll - 1.6 + rng.normal(0, 1.0, 500)),
                              ("mnist_1x500_1mask", twin_nll), ("mnist_2x500_32masks", twin_nll)):  # fmt: skip
        experiment = plan.experiment(name, "cpu")  # 2x500's twin has not finished: no row
        metrics = fake_metrics(experiment, test_nll={"nats": float(per_example.mean())})
        write_json(metrics, tmp_path / "metrics" / f"{name}.json")
        (tmp_path / "per_example").mkdir(exist_ok=True)
        np.save(tmp_path / "per_example" / f"{name}.npy", per_example.astype(np.float32))
    table = ensemble_gain_table(tmp_path, "cpu")
    assert list(table["K-mask experiment"]) == ["mnist_1x500_32masks"]
    row = table.iloc[0]
    assert row["gain (nats)"] == pytest.approx(1.6, abs=0.2)
    pairs = [
        np.load(tmp_path / "per_example" / f"{n}.npy").astype(np.float64) for n in ("mnist_1x500_32masks", "mnist_1x500_1mask")
    ]
    exact = np.std(pairs[0] - pairs[1], ddof=1) / np.sqrt(500)  # about 1/sqrt(500), far below the unpaired 10/sqrt(500)
    assert row["paired stderr"] == pytest.approx(exact, rel=1e-12)  # measured: equal to the last bit
    assert row["paper's gain at this width"].startswith("n/a")  # the paper has no 500-unit 32-mask number here


def test_rows_are_judged_only_against_a_reference_of_their_width(tmp_path):
    for name, stopped_early in (("mnist_1x2000_1mask", True), ("mnist_1x500_1mask", True), ("mnist_2x500_32masks", False)):
        experiment = PLAN.experiment(name, "cpu")
        cap = experiment.recipe["max_epochs"]
        metrics = fake_metrics(experiment, test_nll={"nats": 93.0, "stderr": 0.2}, epochs=cap, stopped_early=stopped_early)
        write_json(metrics, tmp_path / "metrics" / f"{name}.json")
    table = nll_table(tmp_path, "cpu", "mnist").set_index("experiment")
    assert table.loc["mnist_1x2000_1mask", "verdict"] == "reference only"  # the paper's 1-mask row has 8000 units
    assert table.loc["mnist_1x500_1mask", "verdict"] == "better"  # against the paper's 500-unit figure, 94.5
    assert table.loc["mnist_2x500_32masks", "verdict"].startswith("STOPPED AT ITS EPOCH CAP")


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "--profile", "nope"], "unknown profile"),
        (["check", "--profile", "cpu", "--only", "no_such_experiment"], "not in profile"),
        (["run", "no_such_experiment", "--profile", "cpu"], "unknown experiment"),
    ],
)
def test_bad_replicate_requests_stop_with_a_clear_message(args, message, capsys):
    assert replicate_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_missing_data_stops_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MADE_DATA_DIR", str(tmp_path / "empty"))
    from replication.training import data as data_module

    def offline(url, sha256, dest):
        raise OSError("no network")

    monkeypatch.setattr(data_module, "fetch", offline)
    with pytest.raises(DataError, match="not found"):
        check_plan("cpu", ["mnist_1x500_1mask"])


def test_unknown_profile_is_rejected():
    with pytest.raises(ReplicationError, match="unknown profile"):
        PLAN.experiment("mnist_1x500_1mask", "gpu")


def test_unknown_recipe_field_is_rejected():
    text = (ROOT / "replication" / "experiments.toml").read_text()
    typo = text.replace("[experiments.mnist_1x500_1mask]\n", "[experiments.mnist_1x500_1mask]\nlearning_rate = 0.1\n")
    with pytest.raises(ReplicationError, match="unknown fields"):
        parse_plan(typo)
    assert parse_plan(text).experiments.keys() == PLAN.experiments.keys()


def pins(text: str) -> set[str]:
    return set(re.findall(r"([A-Za-z0-9_.\-]+==[0-9][^\s\"',]*)", text))


def test_environment_yml_and_pyproject_pin_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    assert pins((ROOT / "environment.yml").read_text()) == declared
    assert all("==" in d for d in declared)
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_a_failing_experiment_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    from replication import replicate

    ran = []

    def fake_execute(notebook, output, parameters, edit=None):
        ran.append(parameters["name"])
        if parameters["name"] == "mnist_1x500_1mask":
            raise RuntimeError("boom: out of memory")

    monkeypatch.setattr(replicate, "execute", fake_execute)
    for name in ("mnist_1x500_1mask", "uci_dna_single"):
        assert replicate.run_one(name, "smoke", tmp_path, tmp_path / "runs") == 0
    assert ran == ["mnist_1x500_1mask", "uci_dna_single"]
    assert (tmp_path / "failed" / "mnist_1x500_1mask.txt").read_text().strip() == "boom: out of memory"
    assert not (tmp_path / "failed" / "uci_dna_single.txt").exists()
    assert "[FAILED] mnist_1x500_1mask" in capsys.readouterr().err
    table = nll_table(tmp_path, "smoke", "mnist")
    assert table.set_index("experiment").loc["mnist_1x500_1mask", "verdict"] == "failed: boom: out of memory"


def test_run_folders_are_keyed_by_recipe(tmp_path):
    a = PLAN.experiment("uci_dna_single", "cpu")
    assert a.run_dir(tmp_path, "cpu") == PLAN.experiment("uci_dna_single", "cpu").run_dir(tmp_path, "cpu")
    assert a.run_dir(tmp_path, "cpu") != PLAN.experiment("uci_dna_single", "smoke").run_dir(tmp_path, "cpu")
    assert a.run_dir(tmp_path, "cpu").name.startswith("uci_dna_single-")


def test_a_raised_epoch_cap_continues_the_run_in_place(tmp_path):
    base = PLAN.experiment("uci_dna_single", "smoke")
    capped, raised = (dataclasses.replace(base, recipe={**base.recipe, "max_epochs": n}) for n in (1, 2))
    other = dataclasses.replace(base, recipe={**base.recipe, "max_epochs": 2, "lr": 0.01})
    assert capped.run_dir(tmp_path, "smoke") == raised.run_dir(tmp_path, "smoke") != other.run_dir(tmp_path, "smoke")
    data = load_data(base)
    _, first = train_run(capped.run_dir(tmp_path, "smoke"), data, *capped.configs(data.dim), progress=False)
    record = ExperimentRecord.of(first, identity=capped.identity())
    write_record(record, tmp_path / "results" / "metrics" / "uci_dna_single.json")
    assert finished_metrics(capped, tmp_path / "results") is not None
    assert finished_metrics(raised, tmp_path / "results") is None  # stopped at a lower cap than the recipe's: not finished
    _, second = train_run(raised.run_dir(tmp_path, "smoke"), data, *raised.configs(data.dim), progress=False)
    assert second.epochs == 2 and second.history[0] == first.history[0]


def test_a_failing_curve_without_a_message_is_recorded(tmp_path, monkeypatch):
    from replication import replicate

    def fail(notebook, output, parameters, edit=None):
        raise RuntimeError()

    monkeypatch.setattr(replicate, "execute", fail)
    assert replicate.run_curve("smoke", tmp_path, tmp_path / "runs") == 0  # no curve model finished: nothing to draw
    assert not (tmp_path / "failed" / "masks_curve.txt").exists()
    experiment = PLAN.experiment("mnist_1x500_32masks", "smoke")
    write_json(fake_metrics(experiment), tmp_path / "metrics" / "mnist_1x500_32masks.json")
    assert replicate.run_curve("smoke", tmp_path, tmp_path / "runs") == 0
    assert (tmp_path / "failed" / "masks_curve.txt").read_text().strip() == "RuntimeError"


def test_masks_curve_without_a_finished_model_names_the_profiles_own_models(tmp_path):
    with pytest.raises(ReplicationError, match="masks curve needs one of") as error:
        masks_curve("paper", tmp_path, tmp_path / "runs")
    assert "paper_mnist_1x8000_32masks_cpu" in str(error.value) and "mnist_1x500_32masks," not in str(error.value)


def test_a_row_with_several_seeds_expands_into_runs_with_consecutive_seeds():
    runs = PLAN.seed_runs("uci_dna_single", "smoke")
    assert [r.name for r in runs] == ["uci_dna_single", "uci_dna_single-seed1235"]
    assert [r.recipe["seed"] for r in runs] == [1234, 1235] and {r.row for r in runs} == {"uci_dna_single"}
    assert PLAN.experiment("uci_dna_single-seed1235", "smoke") == runs[1]
    cpu_runs = ["uci_dna_single"] + [f"uci_dna_single-seed{s}" for s in range(1235, 1239)]  # five seeds in the cpu profile
    assert [r.name for r in PLAN.seed_runs("uci_dna_single", "cpu")] == cpu_runs
    with pytest.raises(ReplicationError, match="unknown experiment"):
        PLAN.experiment("uci_dna_single-seed9999", "smoke")
    assert [e.name for e in check_plan("smoke", ["uci_dna_single"], check_data=False)] == [r.name for r in runs]


def test_the_table_gives_the_mean_and_spread_over_seeds(tmp_path):
    for run, nll in zip(PLAN.seed_runs("uci_dna_single", "smoke"), (80.0, 82.0)):
        metrics = fake_metrics(run, test_nll={"nats": nll, "stderr": 0.3})
        write_json(metrics, tmp_path / "metrics" / f"{run.name}.json")
    row = nll_table(tmp_path, "smoke", "uci").set_index("experiment").loc["uci_dna_single"]
    assert row["seeds"] == 2 and row["test NLL"] == pytest.approx(81.0) and row["sd over seeds"] == pytest.approx(2**0.5)


def test_the_gain_pairs_seeds_and_gives_their_spread(tmp_path):
    plan = load_plan()
    twins = plan.seed_runs("mnist_1x500_1mask", "cpu")
    ensembles = plan.seed_runs("mnist_1x500_32masks", "cpu")
    assert [r.recipe["seed"] for r in twins] == [r.recipe["seed"] for r in ensembles] == [1234, 1235, 1236]
    for runs, nlls in ((twins, (92.0, 93.0, 95.0)), (ensembles[:2], (91.0, 93.5))):  # the third ensemble is unfinished
        for run, nll in zip(runs, nlls):
            metrics = fake_metrics(run, test_nll={"nats": nll})
            write_json(metrics, tmp_path / "metrics" / f"{run.name}.json")
    row = ensemble_gain_table(tmp_path, "cpu").set_index("K-mask experiment").loc["mnist_1x500_32masks"]
    assert row["seeds"] == 2  # seed 1236 has no pair
    assert row["gain (nats)"] == pytest.approx(0.25) and row["sd over seeds"] == pytest.approx(np.std([1.0, -0.5], ddof=1))
    assert row["twin test NLL"] == pytest.approx(92.5) and row["paired stderr"] is None  # no per-example NLLs saved
    tables = {stem: pd.DataFrame() for stem in TABLES} | {"ensemble_gain": ensemble_gain_table(tmp_path, "cpu")}
    assert "A blank `paired stderr`" in results_readme(tmp_path, "cpu", tables)  # the README says why
    tables["ensemble_gain"]["paired stderr"] = 0.05
    assert "A blank `paired stderr`" not in results_readme(tmp_path, "cpu", tables)


def test_a_twin_has_the_same_kind_of_ordering():
    plan = load_plan()
    candidates = plan.for_profile("cpu")
    connectivity_only = plan.experiment("mnist_1x500_32masks_connectivity_only", "cpu")
    assert one_mask_twin(connectivity_only, candidates).name == "mnist_1x500_1mask"  # one random ordering each
    natural = dataclasses.replace(connectivity_only, recipe={**connectivity_only.recipe, "random_ordering": False})
    assert one_mask_twin(natural, candidates).name == "mnist_1x500_1mask_natural_order"
    order_agnostic = plan.experiment("mnist_1x500_32masks", "cpu")
    assert one_mask_twin(order_agnostic, candidates).name == "mnist_1x500_1mask"


def test_the_masks_curve_keeps_the_rows_of_models_it_evaluated_before():
    from replication.curve import saved_rows

    old, new = PLAN.experiment("mnist_1x2000_32masks", "cpu"), PLAN.experiment("mnist_1x500_32masks", "cpu")
    identity = {"experiments": [old.identity(), new.identity()], "counts": [1, 2]}
    rows = [{"experiment": old.name, "masks": n, "test NLL": 90.0 + n} for n in (1, 2)]
    state = {"identity": {"experiments": [old.identity()], "counts": [1, 2]}, "rows": rows}
    models = {old.name: 90.5, new.name: 94.3}  # each finished model's test NLL
    assert saved_rows(state, [old, new], identity, models) == {old.name: rows}  # only the new model needs its checkpoint
    assert saved_rows({**state, "identity": {**state["identity"], "counts": [1, 4]}}, [old, new], identity, models) == {}
    assert saved_rows(None, [old, new], identity, models) == {}
    assert saved_rows({**state, "models": {old.name: 90.5}}, [old, new], identity, models) == {old.name: rows}
    retrained = {**models, old.name: 90.7}  # same recipe, new weights: its rows are evaluated again
    assert saved_rows({**state, "models": {old.name: 90.5}}, [old, new], identity, retrained) == {}


def test_the_results_readme_shows_pictures_and_notebooks_of_finished_runs_only(tmp_path):
    """A sample grid or notebook left by a run whose recipe has since changed is not shown beside today's tables."""
    finished, stale = load_plan().seed_runs("mnist_1x500_1mask", "cpu")[:2]
    write_json(fake_metrics(finished), tmp_path / "metrics" / f"{finished.name}.json")
    recipe = stale.identity()["recipe"]  # the run as an older plan had it, before its ordering changed
    old = {**stale.identity(), "recipe": {**recipe, "random_ordering": not recipe["random_ordering"]}}
    write_json(fake_metrics(stale, identity=old), tmp_path / "metrics" / f"{stale.name}.json")
    for name in (finished.name, stale.name):
        write_text(tmp_path / "samples" / f"{name}.png", "png")
        write_text(tmp_path / "notebooks" / f"{name}.ipynb", "{}")
    write_text(tmp_path / "notebooks" / "summary.ipynb", "{}")
    text = results_readme(tmp_path, "cpu", {stem: pd.DataFrame() for stem in TABLES})
    assert f"samples/{finished.name}.png" in text and f"notebooks/{finished.name}.ipynb" in text
    assert f"samples/{stale.name}.png" not in text and f"notebooks/{stale.name}.ipynb" not in text
    assert "notebooks/summary.ipynb" in text  # notebooks of no single experiment are always listed


def test_make_replicate_starts_a_long_run_only_when_only_names_it(tmp_path, capsys):
    from replication.replicate import long_runs_left, pending

    long_runs = {e.name for e in PLAN.for_profile("cpu") if e.long_run}
    assert "mnist_1x500_32masks_paper_recipe" in long_runs
    assert long_runs.isdisjoint(e.name for e in pending("cpu", tmp_path, []))  # an empty results folder
    assert {e.name for e in long_runs_left("cpu", tmp_path, [])} == long_runs
    named = ["mnist_1x500_32masks_paper_recipe"]
    assert [e.name for e in pending("cpu", tmp_path, named)] == named
    assert not any(e.long_run for e in PLAN.for_profile("smoke"))  # the smoke profile runs every notebook
