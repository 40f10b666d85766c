"""The library's structure: no import cycle (deferred imports included), one schema, finished work recognised."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from replication import curve
from replication.config import recipe_fields
from replication.experiments import INFO_FIELDS, NOT_IN_IDENTITY, data_unavailable, is_complete, load_plan, metrics_path
from replication.migrate import migrate_runs
from replication.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "replication"


def sibling_imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("replication."):
                names.add(node.module.split(".")[1])
            elif node.module == "replication":
                names |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("replication.")}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {n.split(".")[0] for n in names} & modules - {path.stem}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_no_import_cycle_among_the_modules():
    graph = {p.stem: sibling_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert graph["made"] >= {"sampling", "layers", "config"}  # the parser sees real edges
    assert find_cycle(graph) is None, find_cycle(graph)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and would see a cycle


def test_every_recipe_key_is_a_configuration_field():
    plan = load_plan()
    fields = set(recipe_fields())
    assert set(plan.defaults) <= fields
    for entry in plan.experiments.values():
        assert set(entry) - INFO_FIELDS <= fields


@pytest.mark.parametrize("folder, profile", [("results", "cpu")])
def test_the_committed_results_are_recognised_as_finished(folder, profile):
    """A committed result whose recipe is still the plan's is recognised as finished (`make replicate` does not train it
    again), and every committed result has today's identity schema, so a change of code never orphans finished work.
    (Rows whose recipe or epoch cap the plan changed are retrained by design.)"""
    experiments = load_plan().for_profile(profile)
    recognised = 0
    for experiment in experiments:
        path = metrics_path(ROOT / folder, experiment.name)
        metrics = json.loads(path.read_text()) if path.is_file() else {}
        if metrics.get("identity") == experiment.identity() and metrics["stopped_early"]:
            assert is_complete(experiment, ROOT / folder), experiment.name
            recognised += 1
    assert recognised >= 10
    if all(is_complete(e, ROOT / folder) or data_unavailable(e) for e in experiments):
        assert curve.is_current(profile, ROOT / folder)  # the curve is not recomputed (that would need runs/)
    for path in (ROOT / folder / "metrics").glob("*.json"):
        recipe = json.loads(path.read_text())["identity"]["recipe"]
        assert set(recipe) == set(recipe_fields()) - NOT_IN_IDENTITY, path.name


def format_1(state: dict) -> dict:
    """A format-2 checkpoint written back in the first release's layout (configs repeated, no "format" key)."""
    extra = {"config": state["model_config"], "mask_index": state["mask_index"]}
    best = {**state["best"], "state": {**state["best"]["state"], "_extra_state": extra}}
    return {
        "model_config": state["model_config"], "train_config": state["train_config"],
        "model": {**state["model"], "_extra_state": extra}, "optimizer": state["optimizer"],
        "shuffle_rng": state["rng"]["shuffle"], "torch_rng": state["rng"]["torch"], "epoch": state["epoch"],
        "mask_index": state["mask_index"], "best": best, "history": state["history"], "seconds": state["seconds"],
        "finished": False, "data": {**state["data"], "source": "/somewhere/dna.npz"},
    }  # fmt: skip


def test_a_first_release_checkpoint_is_migrated_and_resumes_exactly(tmp_path):
    from replication.experiments import load_data
    from replication.made import MADE

    experiment = load_plan().experiment("uci_dna_single", "smoke")  # two epochs
    data = load_data(experiment)
    model_config, train_config, _ = experiment.configs(data.dim)
    straight = Trainer(MADE(model_config), data, train_config, progress=False).run()

    one_epoch = dataclasses.replace(train_config, max_epochs=1)
    first = Trainer(MADE(model_config), data, one_epoch, progress=False)
    first.run()
    old_folder = tmp_path / "smoke" / "uci_dna_single-0123abcd"  # the first release's key for this recipe
    old_folder.mkdir(parents=True)
    torch.save(format_1(first.state()), old_folder / "checkpoint.pt")

    assert migrate_runs(tmp_path) == [f"{old_folder} -> {experiment.run_dir(tmp_path, 'smoke')}"]
    assert migrate_runs(tmp_path) == []  # a second pass finds nothing to do
    resumed = Trainer(MADE(model_config), data, train_config, experiment.run_dir(tmp_path, "smoke") / "checkpoint.pt",
                      progress=False).run()  # fmt: skip
    assert resumed.history == straight.history
