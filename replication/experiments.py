"""The experiment plan (``experiments.toml``): recipes, profiles, paper numbers, and running one recipe.

A run of experiment ``NAME`` under a profile writes, inside ``results_dir``:
``metrics/NAME.json`` (its recipe, metrics and paper reference: the mark of a finished run) and,
for image data, ``samples/NAME.png``.  Checkpoints live in ``runs_dir/PROFILE/NAME-<hash of the
recipe>/`` so an interrupted run resumes, a changed recipe starts afresh, and a finished run with the
same recipe is skipped.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .data import BinaryDataset, load_dataset, locate
from .errors import ReplicationError
from .made import MADEConfig
from .report_images import save_grid
from .runs import CHECKPOINT, load_model, train_run, write_json
from .train import TrainConfig, same_recipe_but_cap

MODEL_FIELDS = {"hidden", "direct", "activation", "init", "masks", "order_agnostic", "connectivity_agnostic", "dropout"}
TRAIN_FIELDS = {"optimizer", "lr", "weight_decay", "batch_size", "patience", "max_epochs", "valid_masks"}
RECIPE_FIELDS = MODEL_FIELDS | TRAIN_FIELDS | {"test_masks", "seed"}
INFO_FIELDS = {"profiles", "dataset", "paper", "architecture", "note"}


@dataclass(frozen=True)
class Experiment:
    """One row of the paper to reproduce: data set, recipe, and the paper number it is compared with."""

    name: str
    dataset: str
    paper: str  # "mnist.<row>" or "uci.<set>.<single|mask_sampling>"
    architecture: str  # "paper", "reduced" (CPU stand-in) or "assumed" (see experiments.toml)
    note: str
    recipe: dict[str, Any]
    profiles: tuple[str, ...]
    subset: int | None = None  # rows per split (smoke profile)

    @property
    def family(self) -> str:
        return self.paper.split(".")[0]

    def model_config(self, input_dim: int) -> MADEConfig:
        r = self.recipe
        return MADEConfig(
            input_dim=input_dim, hidden_sizes=list(r["hidden"]), direct=r["direct"], activation=r["activation"],
            num_masks=r["masks"], order_agnostic=r["order_agnostic"], connectivity_agnostic=r["connectivity_agnostic"],
            dropout=r["dropout"], init=r["init"], seed=r["seed"],
        )  # fmt: skip

    def train_config(self) -> TrainConfig:
        return TrainConfig(**{k: self.recipe[k] for k in TRAIN_FIELDS}, seed=self.recipe["seed"])

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same: data set, subset and full recipe."""
        return {"dataset": self.dataset, "subset": self.subset, "recipe": self.recipe}

    def run_dir(self, runs_dir: str | Path, profile: str) -> Path:
        """Checkpoint folder of this exact recipe: ``runs_dir/PROFILE/NAME-<8 hex digits>``."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        return Path(runs_dir) / profile / f"{self.name}-{digest}"


@dataclass(frozen=True)
class Plan:
    """The parsed ``experiments.toml``."""

    paper: dict[str, Any]
    profiles: dict[str, dict[str, Any]]
    curve: dict[str, Any]
    experiments: dict[str, dict[str, Any]] = field(repr=False)
    defaults: dict[str, Any] = field(repr=False)

    def reference(self, key: str) -> tuple[str, float]:
        """(row label, NLL) of a paper reference like ``mnist.made_1hl_1mask`` or ``uci.dna.single``."""
        family, *rest = key.split(".")
        if family == "mnist":
            entry = self.paper["mnist"][rest[0]]
            return entry["row"], float(entry["nll"])
        data, variant = rest
        label = "MADE" if variant == "single" else "MADE mask sampling"
        return f"{data}: {label}", float(self.paper["uci"][data][variant])

    def experiment(self, name: str, profile: str) -> Experiment:
        if name not in self.experiments:
            raise ReplicationError(f"unknown experiment {name!r}; known: {', '.join(self.experiments)}")
        self.check_profile(profile)
        entry = self.experiments[name]
        recipe = {**self.defaults, **{k: v for k, v in entry.items() if k in RECIPE_FIELDS}}
        settings = self.profiles[profile]
        recipe.update(settings.get("overrides", {}))
        return Experiment(
            name=name, dataset=entry["dataset"], paper=entry["paper"], architecture=entry["architecture"],
            note=entry.get("note", ""), recipe=recipe, profiles=tuple(entry["profiles"]), subset=settings.get("subset"),
        )  # fmt: skip

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise ReplicationError(f"unknown profile {profile!r}; use one of {', '.join(self.profiles)}")

    def for_profile(self, profile: str) -> list[Experiment]:
        self.check_profile(profile)
        return [self.experiment(n, profile) for n, e in self.experiments.items() if profile in e["profiles"]]


@cache
def load_plan() -> Plan:
    """The project's ``experiments.toml``, parsed and validated once."""
    return parse_plan(resources.files(__package__).joinpath("experiments.toml").read_text())


def parse_plan(text: str) -> Plan:
    """Parse and validate an experiment plan (every experiment's fields, paper key and architecture)."""
    table = tomllib.loads(text)
    plan = Plan(table["paper"], table["profiles"], table["curve"], table["experiments"], table["defaults"])
    for name, entry in plan.experiments.items():
        unknown = set(entry) - RECIPE_FIELDS - INFO_FIELDS
        if unknown:
            raise ReplicationError(f"experiments.toml: {name} has unknown fields {sorted(unknown)}")
        plan.reference(entry["paper"])  # raises KeyError early if the paper key is wrong
        if entry["architecture"] not in ("paper", "reduced", "assumed"):
            raise ReplicationError(f"experiments.toml: {name} has architecture {entry['architecture']!r}")
    return plan


def check_plan(profile: str, names: list[str] | None = None, check_data: bool = True) -> list[Experiment]:
    """Validate a request before any training: profile, experiment names, and (``check_data``) that the data
    are at hand, downloading what is missing."""
    plan = load_plan()
    experiments = plan.for_profile(profile)
    if names:
        known = {e.name for e in experiments}
        missing = [n for n in names if n not in known]
        if missing:
            raise ReplicationError(
                f"experiment(s) {', '.join(missing)} not in profile {profile!r}; it has: {', '.join(sorted(known))}"
            )
        experiments = [e for e in experiments if e.name in names]
    for dataset in sorted({e.dataset for e in experiments} if check_data else ()):
        locate(dataset)  # DataError (clear, one line) when the data can be neither found nor downloaded
    return experiments


def metrics_path(results_dir: str | Path, name: str) -> Path:
    return Path(results_dir) / "metrics" / f"{name}.json"


def finished_metrics(experiment: Experiment, results_dir: str | Path) -> dict[str, Any] | None:
    """The metrics of this exact experiment (same data and recipe) in ``results_dir``, or None."""
    path = metrics_path(results_dir, experiment.name)
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return metrics if metrics.get("identity") == experiment.identity() else None


def is_complete(experiment: Experiment, results_dir: str | Path) -> bool:
    """True when ``results_dir`` holds finished metrics of this exact experiment."""
    return finished_metrics(experiment, results_dir) is not None


def load_data(experiment: Experiment) -> BinaryDataset:
    data = load_dataset(experiment.dataset)
    return data.subset(experiment.subset) if experiment.subset else data


def run_experiment(
    name: str,
    profile: str,
    results_dir: str | Path = "results",
    runs_dir: str | Path = "runs",
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume, or skip when finished) one experiment and write its metrics and samples."""
    plan = load_plan()
    experiment = plan.experiment(name, profile)
    results_dir = Path(results_dir)
    finished = finished_metrics(experiment, results_dir)
    if finished is not None:
        print(f"{name}: finished results found in {metrics_path(results_dir, name)}; skipping")
        return finished
    data = load_data(experiment)
    run_dir = experiment.run_dir(runs_dir, profile)
    continue_from_lower_cap(experiment, data, run_dir)
    metrics = train_run(
        run_dir, data, experiment.model_config(data.dim), experiment.train_config(),
        experiment.recipe["test_masks"], device, progress,
    )  # fmt: skip
    row, paper_nll = plan.reference(experiment.paper)
    metrics.update(
        name=name, profile=profile, identity=experiment.identity(), architecture=experiment.architecture,
        note=experiment.note, paper={"key": experiment.paper, "row": row, "nll": paper_nll}, split="test",
    )  # fmt: skip
    if data.image_shape is not None:
        metrics["samples"] = write_samples(run_dir, data, results_dir / "samples" / f"{name}.png", name)
    path = metrics_path(results_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(metrics, path)
    return metrics


def continue_from_lower_cap(experiment: Experiment, data: BinaryDataset, run_dir: Path) -> Path | None:
    """When only ``max_epochs`` was raised, start ``run_dir`` from the checkpoint of the run with the lower cap
    (a copy: that run's folder stays as it was) instead of from scratch.  Returns the folder it came from."""
    if (run_dir / CHECKPOINT).exists():
        return None
    model_config, train_config = asdict(experiment.model_config(data.dim)), asdict(experiment.train_config())
    candidates = []
    for folder in run_dir.parent.glob(f"{experiment.name}-*"):
        path = folder / CHECKPOINT
        if folder == run_dir or not path.is_file():
            continue
        state = torch.load(path, map_location="cpu", weights_only=False)
        if (same_recipe_but_cap(state, model_config, train_config) and state["data"] == data.fingerprint()
                and state["epoch"] <= train_config["max_epochs"]):  # fmt: skip
            candidates.append((state["epoch"], folder))
    if not candidates:
        return None
    epochs, source = max(candidates)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / CHECKPOINT, run_dir / CHECKPOINT)
    print(f"{experiment.name}: continuing the {epochs} epochs of {source} under max_epochs={train_config['max_epochs']}")
    return source


def write_samples(run_dir: Path, data: BinaryDataset, path: Path, title: str, n: int = 100) -> str:
    """A 10x10 grid of exact samples from the trained model (mask 0, fixed seed)."""
    model = load_model(run_dir)
    model.set_mask(0)
    samples = model.sample(n, generator=torch.Generator().manual_seed(0))
    save_grid(samples.cpu().numpy(), path, data.image_shape, title=f"{title}: {n} exact samples")
    return str(path.relative_to(path.parents[1]))
