"""One-off conversion of results and run folders written by the first release (format 1) to the current schema.

``python -m replication.migrate [--results DIR ...] [--runs DIR]`` rewrites, in place and atomically:
- ``metrics/*.json`` and ``masks_curve.json``: the identity's recipe keys become the configuration fields' names (``hidden`` ->
  ``hidden_sizes``, ``masks`` -> ``num_masks``), fields added since get their defaults, ``max_epochs`` leaves
  the identity, and registered data sets lose the machine path of their file;
- ``checkpoint.pt`` and ``model.pt`` of every run folder: each piece of state once, in format 2; a folder
  whose recipe is still in the plan is renamed to its new key (``NAME-<hash>``), so the run resumes.
Files already in the current format are left alone, so running it twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from .checkpoints import FORMAT
from .config import default_recipe
from .data import registry
from .errors import ReplicationError
from .experiments import NOT_IN_IDENTITY, load_plan
from .files import save_torch, write_json

RENAMED = {"hidden": "hidden_sizes", "masks": "num_masks"}


def new_recipe(old: dict[str, Any]) -> dict[str, Any]:
    """A format-1 identity recipe in the current schema (without the epoch cap)."""
    recipe = {RENAMED.get(k, k): v for k, v in old.items()}
    return {k: v for k, v in {**default_recipe(), **recipe}.items() if k not in NOT_IN_IDENTITY}


def without_path(data: dict[str, Any]) -> dict[str, Any]:
    """A data fingerprint without the file's path when the data set is found by its registered name."""
    return {k: v for k, v in data.items() if k != "source"} if data.get("name") in registry() else data


def migrate_metrics(path: Path) -> str:
    metrics = json.loads(path.read_text())
    identity = metrics.get("identity")
    if not identity or "masks" not in identity["recipe"] and "max_epochs" not in identity["recipe"]:
        return "current"
    metrics["identity"] = {**identity, "recipe": new_recipe(identity["recipe"])}
    metrics["data"] = without_path(metrics["data"])
    write_json(metrics, path)
    try:
        still = load_plan().experiment(metrics["name"], metrics["profile"]).identity() == metrics["identity"]
    except (ReplicationError, KeyError):
        still = False
    return "migrated" if still else "migrated (its recipe has changed since: it will be rerun)"


def migrate_curve(path: Path) -> str:
    """The masks curve's saved identity in the current schema (its twins kept beside it, not in it)."""
    state = json.loads(path.read_text())
    identity = state["identity"]
    if "twins" not in identity:
        return "current"
    experiments = [{**e, "recipe": new_recipe(e["recipe"])} for e in identity["experiments"]]
    twins = identity["twins"]
    write_json(
        {"identity": {"experiments": experiments, "counts": identity["counts"]}, "twins": twins, "rows": state["rows"]}, path
    )
    return "migrated"


def without_extra_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.endswith("_extra_state")}


def migrate_checkpoint(path: Path) -> dict[str, Any] | None:
    """Convert one format-1 checkpoint in place; returns it (None when it is already current)."""
    old = torch.load(path, map_location="cpu", weights_only=True)
    if old.get("format") == FORMAT:
        return None
    best = {**old["best"], "state": without_extra_state(old["best"]["state"])}
    state = {
        "format": FORMAT, "model_config": old["model_config"], "train_config": old["train_config"],
        "data": without_path(old["data"]), "epoch": old["epoch"], "mask_index": old["mask_index"],
        "model": without_extra_state(old["model"]), "optimizer": old["optimizer"],
        "rng": {"shuffle": old["shuffle_rng"], "torch": old["torch_rng"]}, "best": best, "history": old["history"],
        "seconds": old["seconds"],
    }  # fmt: skip
    save_torch(state, path)
    return state


def migrate_model(path: Path, data: dict[str, Any]) -> None:
    old = torch.load(path, map_location="cpu", weights_only=True)
    if old.get("format") != FORMAT:
        save_torch({"format": FORMAT, "config": old["config"], "state": without_extra_state(old["state"]), "data": data}, path)


def new_folder(folder: Path, state: dict[str, Any]) -> Path:
    """Where a converted run folder belongs now: its experiment's current key, when the recipe still matches."""
    profile, name = folder.parent.name, folder.name.rsplit("-", 1)[0]
    plan = load_plan()
    if name not in plan.experiments or profile not in plan.profiles:
        return folder
    experiment = plan.experiment(name, profile)
    model_config, train_config = experiment.configs(state["model_config"]["input_dim"])[:2]
    same_train = {**state["train_config"], "max_epochs": None} == {**train_config.__dict__, "max_epochs": None}
    return (
        experiment.run_dir(folder.parents[1], profile)
        if state["model_config"] == model_config.__dict__ and same_train
        else folder
    )


def migrate_runs(runs_dir: Path) -> list[str]:
    lines = []
    for checkpoint in sorted(runs_dir.glob("*/*/checkpoint.pt")):
        folder = checkpoint.parent
        state = migrate_checkpoint(checkpoint)
        if state is None:
            continue
        if (folder / "model.pt").is_file():
            migrate_model(folder / "model.pt", state["data"])
        metrics = folder / "metrics.json"
        if metrics.is_file():
            migrate_metrics_file_data(metrics)
        target = new_folder(folder, state)
        if target != folder and not target.exists():
            folder.rename(target)
        lines.append(f"{folder} -> {target}")
    return lines


def migrate_metrics_file_data(path: Path) -> None:
    metrics = json.loads(path.read_text())
    metrics["data"] = without_path(metrics["data"])
    write_json(metrics, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replication.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, action="append", default=[], help="a results folder (repeatable)")
    parser.add_argument("--runs", type=Path, default=None, help="a runs folder (checkpoints)")
    args = parser.parse_args(argv)
    for results in args.results:
        for path in sorted((results / "metrics").glob("*.json")):
            print(f"{path}: {migrate_metrics(path)}")
        if (results / "masks_curve.json").is_file():
            print(f"{results / 'masks_curve.json'}: {migrate_curve(results / 'masks_curve.json')}")
    if args.runs is not None:
        for line in migrate_runs(args.runs):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
