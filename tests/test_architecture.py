"""The library's structure: no import cycle (deferred imports included), one schema, finished work recognised."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from replication import curve
from replication.experiments import INFO_FIELDS, data_unavailable, is_complete, load_plan, metrics_path
from replication.training.config import NOT_IN_IDENTITY, recipe_fields
from replication.training.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "replication"


BASE = {"errors", "fields", "files"}  # below the model: errors, configuration fields, files and locks
STUDY = {"experiments", "experiment_record", "tables", "figures", "curve", "summary", "report", "completions", "progress",
         "document"}  # fmt: skip
ENGINES = {"engine", "replicate", "plain_engine", "ray_engine", "__main__", "cli"}


def module_name(path: Path) -> str:
    """``model.made`` for ``replication/model/made.py``; ``experiments`` for a top-level module."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports anywhere (top level or inside functions), relative imports resolved."""
    here = module_name(path).split(".")[:-1]  # the subpackage of this module ([] at the top)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1] if node.level > 1 else here
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("replication"):
                prefix = node.module.removeprefix("replication").lstrip(".")
            else:
                continue
            names |= {prefix} | {f"{prefix}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.removeprefix("replication.") for a in node.names if a.name.startswith("replication.")}
    return names & modules - {module_name(path)}


def layer(module: str) -> int:
    """0 the base (errors, fields, files), 1 the model, 2 training, 3 the study, 4 the engines and front ends: imports
    only go down (or across)."""
    if module in BASE:
        return 0
    if module.startswith("model."):
        return 1
    if module.startswith("training."):
        return 2
    return 3 if module in STUDY else 4 if module in ENGINES else -1


def import_graph() -> dict[str, set[str]]:
    paths = [p for p in PACKAGE.rglob("*.py") if p.stem != "__init__"]
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


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
    graph = import_graph()
    assert graph["model.made"] >= {"model.sampling", "model.layers", "model.config"}  # the parser sees real edges
    assert graph["training.train"] >= {"model.made", "errors", "training.optimizers"}  # across subpackages too
    assert find_cycle(graph) is None, find_cycle(graph)
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and would see a cycle


def test_the_subpackages_are_layers_and_imports_only_go_down():
    graph = import_graph()
    assert all(layer(m) >= 0 for m in graph), [m for m in graph if layer(m) < 0]  # every module has its layer
    upward = [(m, n) for m, targets in graph.items() for n in targets if layer(n) > layer(m)]
    assert upward == []


def test_every_recipe_key_is_a_configuration_field():
    plan = load_plan()
    fields = set(recipe_fields())
    assert set(plan.defaults) <= fields
    for entry in plan.experiments.values():
        assert set(entry) - INFO_FIELDS <= fields


# The runs of each profile that have no committed result yet, by name: every other run of the profile (but those whose
# data cannot be had offline) must be recognised as finished.
UNFINISHED = {
    "cpu": {"mnist_1x500_32masks_paper_recipe"},
    "paper": {"paper_mnist_1x8000_32masks", "paper_mnist_2x8000_32masks"},
}  # fmt: skip


@pytest.mark.parametrize("folder, profile", [("results", "cpu"), ("results/paper", "paper")])
def test_the_committed_results_are_recognised_as_finished(folder, profile):
    """Every committed result is recognised as finished (`make replicate` does not train it again), the runs without
    one are exactly those named in ``UNFINISHED``, and every committed result has today's identity schema, so a change
    of code never orphans finished work. The masks curve drawn from the finished models is current."""
    experiments = load_plan().for_profile(profile)
    for experiment in experiments:
        if metrics_path(ROOT / folder, experiment.name).is_file():
            assert is_complete(experiment, ROOT / folder), experiment.name
    unfinished = {e.name for e in experiments if not is_complete(e, ROOT / folder) and not data_unavailable(e)}
    assert unfinished == UNFINISHED[profile]
    assert curve.is_current(profile, ROOT / folder)  # the curve is not recomputed (that would need runs/)
    for path in (ROOT / folder / "metrics").glob("*.json"):
        recipe = json.loads(path.read_text())["identity"]["recipe"]
        counted = {n for n, f in recipe_fields().items() if "absent" not in f.metadata} - NOT_IN_IDENTITY
        assert counted <= set(recipe) <= set(recipe_fields()) - NOT_IN_IDENTITY, path.name


def with_new_training_option(monkeypatch, default: str, absent: str) -> None:
    """Pretend a release added a training option ``new_option`` (its default and its ``absent`` value)."""
    from replication.training import config

    extended = dataclasses.make_dataclass(
        "TrainConfig", [("new_option", "str", config.option(default, "an option added later", absent=absent))],
        bases=(config.TrainConfig,),
    )  # fmt: skip
    monkeypatch.setattr(config, "CONFIGS", (config.MADEConfig, extended, config.EvalConfig))
    load_plan.cache_clear()


@pytest.fixture
def fresh_plan():
    load_plan.cache_clear()
    yield
    load_plan.cache_clear()


def finished_committed(profile: str = "cpu") -> list:
    experiments = load_plan().for_profile(profile)
    return [e for e in experiments if is_complete(e, ROOT / "results")]


def test_a_new_option_at_its_absent_value_keeps_every_finished_result_and_checkpoint(monkeypatch, fresh_plan, tmp_path):
    from replication.experiments import load_data
    from replication.model.made import MADE
    from replication.training.config import configs_from_recipe, default_recipe, identity_recipe

    before = {e.name: e.run_dir("runs", "cpu") for e in finished_committed()}
    experiment = load_plan().experiment("uci_dna_single", "smoke")
    data = load_data(experiment)
    model_config, train_config, _ = experiment.configs(data.dim)
    Trainer(MADE(model_config), data, dataclasses.replace(train_config, max_epochs=1), tmp_path / "c.pt", progress=False).run()

    with_new_training_option(monkeypatch, default="off", absent="off")
    assert "new_option" in default_recipe()
    after = {e.name: e.run_dir("runs", "cpu") for e in finished_committed()}
    assert after == before and len(after) >= 10  # every finished result is still finished, in the same run folder
    model_config, train_config, _ = configs_from_recipe(load_plan().experiment("uci_dna_single", "smoke").recipe, data.dim)
    assert train_config.new_option == "off"
    resumed = Trainer(MADE(model_config), data, train_config, tmp_path / "c.pt", progress=False).run()
    assert resumed.epochs == 2  # the checkpoint written before the option existed resumes
    assert identity_recipe({**default_recipe(), "new_option": "on"}) != identity_recipe(default_recipe())


def test_a_changed_default_makes_results_stale(monkeypatch, fresh_plan):
    with_new_training_option(monkeypatch, default="on", absent="off")  # runs now do something else by default
    assert finished_committed() == []


def test_every_module_is_named_in_the_layout_and_the_architecture_table():
    """A new module is placed in the layout (docs/IMPLEMENTATION.md) and given its one job in ARCHITECTURE.md."""
    readme = (ROOT / "docs" / "IMPLEMENTATION.md").read_text()
    layout = readme[readme.index("## Layout") : readme.index("tests/", readme.index("## Layout"))]
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    modules = [p.relative_to(PACKAGE).as_posix() for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__init__.py"]
    assert "model/made.py" in modules and "progress.py" in modules
    assert [m for m in modules if f"`{m}`" not in architecture] == []
    assert [m for m in modules if Path(m).name not in layout.split()] == []


def test_the_model_is_the_papers_model_and_nothing_else():
    """``model/`` touches no optimizer and stays short enough to read in one sitting (under 650 lines)."""
    files = sorted((PACKAGE / "model").glob("*.py"))

    def code_names(tree: ast.AST) -> set[str]:  # identifiers, attributes and arguments (not prose)
        return {getattr(n, "id", None) or getattr(n, "attr", None) or getattr(n, "arg", None) or "" for n in ast.walk(tree)}

    assert [f.name for f in files if any("optim" in name for name in code_names(ast.parse(f.read_text())))] == []
    assert sum(len(f.read_text().splitlines()) for f in files) < 650


def test_each_idea_is_written_once_and_each_name_says_one_thing():
    """One ensemble (one ``logsumexp`` in the library), and no function, class or constant defined under one name in
    two modules (but each command line's ``main``)."""
    sources = {p: p.read_text() for p in PACKAGE.rglob("*.py")}
    assert [p.name for p, text in sources.items() for _ in range(text.count("logsumexp("))] == ["made.py"]
    defined: dict[str, list[str]] = {}
    for path, text in sources.items():
        for node in ast.parse(text).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()]
            for name in names:
                defined.setdefault(name, []).append(module_name(path))
    assert {name: where for name, where in defined.items() if len(where) > 1 and name != "main"} == {}
