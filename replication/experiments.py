"""The experiment plan (``experiments.toml``): recipes, profiles, paper numbers, and running one recipe.

A run of experiment ``NAME`` under a profile writes, inside ``results_dir``:
``metrics/NAME.json`` (its recipe, metrics and paper reference: the mark of a finished run) and,
for image data, ``samples/NAME.png``.  Checkpoints live in ``runs_dir/PROFILE/NAME-<hash of the
identity>/``: the data set and the recipe except ``max_epochs``, so an interrupted run resumes, a
raised epoch cap continues the run in place, a changed recipe starts afresh, and a finished run with
the same recipe is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import textwrap
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .completions import completable, write_completions
from .errors import ConfigError, DataError, NotFinished, ReplicationError
from .experiment_record import ExperimentRecord, PaperReference
from .figures import save_grid
from .files import write_bytes
from .model.made import MADE
from .model.sampling import sample_ensemble
from .training.config import (
    EvalConfig,
    MADEConfig,
    TrainConfig,
    check_recipe_keys,
    configs_from_recipe,
    default_recipe,
    identity_recipe,
)
from .training.data import BinaryDataset, is_local, load_dataset, locate, registry
from .training.evaluate import NLL, plus_minus
from .training.record import RunRecord, read_record, write_record
from .training.runs import PER_EXAMPLE, train_run

INFO_FIELDS = {"profiles", "dataset", "paper", "architecture", "note", "seeds", "varies", "long_run"}
SEED_RUN = re.compile(r"^(?P<row>.+)-seed(?P<seed>\d+)$")
UNAVAILABLE = "not run: data not available offline"
ROOT = Path(__file__).resolve().parents[1]  # the project, where `make replicate` runs


@dataclass(frozen=True)
class Experiment:
    """One row of the paper to reproduce: data set, recipe, and the paper number it is compared with."""

    name: str
    dataset: str
    paper: str  # "mnist.<row>" or "uci.<set>.<single|mask_sampling>"
    architecture: str  # "paper", "reduced" (CPU stand-in) or "assumed" (see experiments.toml)
    note: str
    recipe: dict[str, Any]  # every field of the configuration dataclasses (config.recipe_fields)
    profiles: tuple[str, ...]
    subset: int | None = None  # rows per split (smoke profile)
    row: str = ""  # the plan entry this run belongs to: ``name`` for its first seed, ``ROW-seedN`` for the others
    long_run: bool = False  # days on this project's CPUs: `make replicate` starts it only when ONLY names it

    def __post_init__(self) -> None:
        if not self.row:
            object.__setattr__(self, "row", self.name)

    @property
    def family(self) -> str:
        return self.paper.split(".")[0]

    def configs(self, input_dim: int) -> tuple[MADEConfig, TrainConfig, EvalConfig]:
        return configs_from_recipe(self.recipe, input_dim)

    def model_config(self, input_dim: int) -> MADEConfig:
        return self.configs(input_dim)[0]

    def train_config(self) -> TrainConfig:
        return self.configs(2)[1]

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same: data set, subset and the recipe's identity (``config.identity_recipe``)."""
        return {"dataset": self.dataset, "subset": self.subset, "recipe": identity_recipe(self.recipe)}

    def run_dir(self, runs_dir: str | Path, profile: str) -> Path:
        """Checkpoint folder of this recipe: ``runs_dir/PROFILE/NAME-<8 hex digits of the identity>``."""
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
    official_trainer: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the known differences
    report: list[dict[str, str]] = field(default_factory=list, repr=False)  # the paper's rows and who answers them

    def reference(self, key: str) -> tuple[str, float]:
        """(row label, NLL) of a paper reference like ``mnist.made_1hl_1mask`` or ``uci.dna.single``."""
        family, *rest = key.split(".")
        if family == "mnist":
            entry = self.paper["mnist"][rest[0]]
            return entry["row"], float(entry["nll"])
        data, variant = rest
        label = "MADE" if variant == "single" else "MADE mask sampling"
        return f"{data}: {label}", float(self.paper["uci"][data][variant])

    def reference_units(self, key: str) -> int | None:
        """Hidden units per layer of a paper reference (None for the UCI table, whose widths are not restated)."""
        family, *rest = key.split(".")
        return self.paper["mnist"][rest[0]].get("units") if family == "mnist" else None

    def comparable(self, experiment: Experiment) -> bool:
        """Whether the experiment has the width of its paper reference (else it is shown for context only)."""
        units = self.reference_units(experiment.paper)
        return units is None or units == max(experiment.recipe["hidden_sizes"])

    def experiment(self, name: str, profile: str) -> Experiment:
        """The run ``name``: a plan entry (its first seed), or ``ENTRY-seedN`` for another of its seeds."""
        self.check_profile(profile)
        if name in self.experiments:
            return self.seed_runs(name, profile)[0]
        match = SEED_RUN.match(name)
        if match and match["row"] in self.experiments:
            for run in self.seed_runs(match["row"], profile)[1:]:
                if run.name == name:
                    return run
        raise ReplicationError(f"unknown experiment {name!r}; known: {', '.join(self.experiments)}")

    def seed_runs(self, row: str, profile: str) -> list[Experiment]:
        """Every run of plan entry ``row`` in ``profile``: its recipe with seeds ``seed, seed + 1, ...`` (the entry's
        ``seeds``: a count, or a count per profile); the first run keeps the entry's name."""
        entry, settings = self.experiments[row], self.profiles[profile]
        recipe = {**default_recipe(), **self.defaults, **{k: v for k, v in entry.items() if k not in INFO_FIELDS}}
        recipe.update(settings.get("overrides", {}))
        seeds = entry.get("seeds", 1)
        count = seeds.get(profile, 1) if isinstance(seeds, dict) else seeds
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"experiments.toml: {row} has seeds = {seeds!r}; give a positive count (or one per profile)")
        runs = []
        for i in range(count):
            seed = recipe["seed"] + i
            runs.append(Experiment(
                name=row if i == 0 else f"{row}-seed{seed}", dataset=entry["dataset"], paper=entry["paper"],
                architecture=entry["architecture"], note=entry.get("note", ""), recipe={**recipe, "seed": seed},
                profiles=tuple(entry["profiles"]), subset=settings.get("subset"), row=row,
                long_run=entry.get("long_run", False) is True and profile != "smoke",
            ))  # fmt: skip
        return runs

    def check_profile(self, profile: str) -> None:
        if profile not in self.profiles:
            raise ReplicationError(f"unknown profile {profile!r}; use one of {', '.join(self.profiles)}")

    def for_profile(self, profile: str) -> list[Experiment]:
        """Every run of the profile: each entry's seeds, in plan order (the grid ``make replicate`` trains)."""
        return [run for row in self.rows(profile) for run in self.seed_runs(row.name, profile)]

    def rows(self, profile: str) -> list[Experiment]:
        """One run per plan entry of the profile (its first seed): the rows of the tables."""
        self.check_profile(profile)
        return [self.seed_runs(n, profile)[0] for n, e in self.experiments.items() if profile in e["profiles"]]


@cache
def load_plan() -> Plan:
    """The project's ``experiments.toml``, parsed and validated once."""
    return parse_plan(resources.files(__package__).joinpath("experiments.toml").read_text())


def check_report_row(plan: Plan, i: int, row: Any) -> None:
    """A row of ``[report]``: a paper reference answered by an experiment of that reference, in a profile it runs in."""
    where = f"experiments.toml: report row {i + 1}"
    if not isinstance(row, dict) or not {"paper", "experiment", "profile"} <= set(row):
        raise ConfigError(f"{where} needs paper, experiment and profile, got {row!r}")
    for name in (row["experiment"], row.get("cpu_variant")):
        entry = plan.experiments.get(name) if name else {}
        if entry is None or (name and (entry.get("paper") != row["paper"] or row["profile"] not in entry.get("profiles", []))):
            raise ConfigError(f"{where}: {name!r} is not an experiment of {row['paper']} in profile {row['profile']!r}")


def parse_plan(text: str) -> Plan:
    """Parse and validate an experiment plan: every recipe key is a configuration field and every recipe builds valid
    configurations; paper keys and architectures exist."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"experiments.toml is not valid TOML: {exc}") from None
    missing = [k for k in ("paper", "profiles", "curve", "experiments", "defaults") if not isinstance(table.get(k), dict)]
    if missing:
        raise ConfigError(f"experiments.toml lacks the table(s) {missing}")
    plan = Plan(table["paper"], table["profiles"], table["curve"], table["experiments"], table["defaults"],
                table.get("official_trainer", []), table.get("report", {}).get("rows", []))  # fmt: skip
    check_recipe_keys(plan.defaults, "experiments.toml [defaults]")
    for name, profile in plan.profiles.items():
        check_recipe_keys(profile.get("overrides", {}), f"experiments.toml profile {name} overrides")
        subset = profile.get("subset")
        if subset is not None and (not isinstance(subset, int) or isinstance(subset, bool) or subset < 1):
            raise ConfigError(f"experiments.toml: profiles.{name}.subset must be a positive integer, got {subset!r}")
    for i, row in enumerate(plan.official_trainer):
        named = [*row.get("measured_by", []), *row.get("seed_spread", [])]
        unknown = [n for n in named if n not in plan.experiments]
        if not isinstance(row.get("difference"), str) or unknown:
            raise ConfigError(f"experiments.toml: official_trainer row {i + 1} needs a difference and known runs, not {unknown}")
    for name, entry in plan.experiments.items():
        check_entry(plan, name, entry)
        for profile in entry["profiles"]:
            plan.experiment(name, profile).configs(2)  # every value valid (ConfigError names the field)
    for i, row in enumerate(plan.report):
        check_report_row(plan, i, row)
    return plan


def check_entry(plan: Plan, name: str, entry: dict[str, Any]) -> None:
    """One ``[experiments.NAME]`` entry: its keys, data set, paper reference, architecture and profiles."""
    where = f"experiments.toml: experiments.{name}"
    check_recipe_keys(set(entry) - INFO_FIELDS, where)
    absent = [k for k in ("profiles", "dataset", "paper", "architecture") if k not in entry]
    if absent:
        raise ConfigError(f"{where} lacks {', '.join(absent)}")
    if entry["dataset"] not in registry():
        raise ConfigError(f"{where}: dataset {entry['dataset']!r} is not a registered data set ({', '.join(registry())})")
    try:
        plan.reference(entry["paper"])
    except (KeyError, ValueError, AttributeError, TypeError):
        raise ConfigError(
            f"{where}: paper {entry['paper']!r} is not a reference of [paper] (mnist.ROW or uci.SET.VARIANT)"
        ) from None
    if not isinstance(entry.get("long_run", False), bool):
        raise ConfigError(f"{where}: long_run must be true or false, got {entry['long_run']!r}")
    if entry["architecture"] not in ("paper", "reduced", "assumed"):
        raise ConfigError(f"{where}: architecture must be paper, reduced or assumed, got {entry['architecture']!r}")
    profiles = entry["profiles"]
    if not isinstance(profiles, list) or not profiles or any(p not in plan.profiles for p in profiles):
        raise ConfigError(f"{where}: profiles must be a list of {', '.join(plan.profiles)}, got {profiles!r}")
    varies = entry.get("varies")
    if varies is not None and (varies not in plan.experiments or varies == name
                               or not set(profiles) <= set(plan.experiments[varies]["profiles"])):  # fmt: skip
        raise ConfigError(f"{where}: varies must name another experiment of the same profiles, got {varies!r}")


def check_plan(profile: str, names: list[str] | None = None, check_data: bool = True) -> list[Experiment]:
    """Validate a request before any training: profile, experiment names, and (``check_data``) that the data
    are at hand, downloading what is missing."""
    plan = load_plan()
    experiments = plan.for_profile(profile)
    if names:  # a plan entry's name selects all its seeds
        known = {e.name for e in experiments} | {e.row for e in experiments}
        missing = [n for n in names if n not in known]
        if missing:
            raise ReplicationError(
                f"experiment(s) {', '.join(missing)} not in profile {profile!r}; it has: {', '.join(sorted(known))}"
            )
        experiments = [e for e in experiments if e.name in names or e.row in names]
    for dataset in sorted({e.dataset for e in experiments} if check_data else ()):
        try:
            locate(dataset)  # DataError (clear, one line) when the data can be neither found nor downloaded
        except DataError:
            if not registry()[dataset].optional:
                raise
            print(f"[skip] {dataset}: data not available offline (its download failed); its experiments are skipped",
                  file=sys.stderr)  # fmt: skip
    return experiments


def data_unavailable(experiment: Experiment) -> bool:
    """An optional data set (not shipped with the project's data) that is not on this machine."""
    info = registry().get(experiment.dataset)
    return info is not None and info.optional and not is_local(experiment.dataset)


def metrics_path(results_dir: str | Path, name: str) -> Path:
    return Path(results_dir) / "metrics" / f"{name}.json"


def per_example_path(results_dir: str | Path, name: str) -> Path:
    """Per-example test NLLs of a finished experiment (float32 ``.npy``), for paired comparisons."""
    return Path(results_dir) / "per_example" / f"{name}.npy"


def finished_metrics(experiment: Experiment, results_dir: str | Path) -> ExperimentRecord | None:
    """The record of this experiment (same data and recipe) in ``results_dir``, or None; a run that stopped at a
    lower epoch cap than the recipe's is not finished (raising the cap continues it). An unreadable or malformed
    record is an error naming the file, never a silently missing result."""
    path = metrics_path(results_dir, experiment.name)
    if not path.exists():
        return None
    record = read_record(path, ExperimentRecord)
    if record.identity != experiment.identity():
        return None
    capped_below = not record.stopped_early and record.epochs < experiment.recipe["max_epochs"]
    return None if capped_below else record


def is_complete(experiment: Experiment, results_dir: str | Path) -> bool:
    """True when ``results_dir`` holds finished metrics of this exact experiment."""
    return finished_metrics(experiment, results_dir) is not None


def load_data(experiment: Experiment) -> BinaryDataset:
    data = load_dataset(experiment.dataset)
    return data.subset(experiment.subset) if experiment.subset else data


def shown(folder: str | Path) -> str:
    """A folder as ``make replicate`` names it: relative to the project when inside it.

    >>> shown(ROOT / "results" / "paper"), shown(ROOT / "results" / "notebooks" / "..")
    ('results/paper', 'results')
    """
    folder = Path(folder).resolve()
    return os.path.relpath(folder, ROOT) if folder.is_relative_to(ROOT) else str(folder)


def replicate_command(profile: str, results_dir: str | Path, name: str | None = None) -> str:
    """The ``make replicate`` command that works on ``results_dir`` in ``profile`` (on experiment ``name`` alone).

    >>> replicate_command("cpu", ROOT / "results", "uci_dna_single")
    'make replicate ONLY=uci_dna_single'
    >>> replicate_command("paper", ROOT / "results" / "paper")
    'make replicate PROFILE=paper RESULTS=results/paper'
    """
    where = shown(results_dir)
    options = [f"PROFILE={profile}"] * (profile != "cpu") + [f"RESULTS={where}"] * (where != "results")
    return " ".join(["make replicate", *options, *([f"ONLY={name}"] if name else [])])


def not_finished(experiment: Experiment, profile: str, results_dir: Path) -> NotFinished:
    """The one-line error of a notebook that only reads results and finds none of ``experiment``."""
    return NotFinished(
        f"{experiment.name}: no finished result of its recipe in {shown(results_dir)}/metrics/ (profile {profile}); this "
        f"notebook only reads results: train it with `{replicate_command(profile, results_dir, experiment.name)}`"
    )


def run_experiment(
    name: str,
    profile: str,
    results_dir: str | Path = "results",
    runs_dir: str | Path = "runs",
    device: str | None = None,
    progress: bool = True,
    train: bool = True,
) -> ExperimentRecord:
    """Train (or resume, or skip when finished) one experiment, draw its figures and write its record. With ``train``
    false it only reads: the finished record, else :class:`NotFinished` (no run folder is created)."""
    experiment, results_dir = load_plan().experiment(name, profile), Path(results_dir)
    finished = finished_metrics(experiment, results_dir)
    if finished is not None:
        print(f"{name}: finished results found in {metrics_path(results_dir, name)}; skipping")
        return finished
    if not train:
        raise not_finished(experiment, profile, results_dir)
    data = load_data(experiment)
    run_dir = experiment.run_dir(runs_dir, profile)
    model, run = train_run(run_dir, data, *experiment.configs(data.dim), device, progress)
    figures = draw_run_figures(model, data, results_dir, name, run)
    return record_experiment(experiment, profile, run, figures, run_dir, results_dir)


def draw_run_figures(model: MADE, data: BinaryDataset, results_dir: Path, name: str, run: RunRecord) -> dict[str, Any]:
    """The trained model's sample grid (image data) and completions of test digits (when its mask 0 models the top
    half first), as the record's ``samples``, ``samples_drawn`` and ``completions``."""
    samples, drawn = (
        write_samples(model, data, results_dir / "samples" / f"{name}.png", name, run.test_nll, run.test_masks)
        if data.image_shape
        else (None, None)
    )
    completions = (
        write_completions(model, data, results_dir / "figures" / f"completions_{name}.png", name)
        if completable(model, data)
        else None
    )
    return {"samples": samples, "samples_drawn": drawn, "completions": completions}


def record_experiment(
    experiment: Experiment, profile: str, run: RunRecord, figures: dict[str, Any], run_dir: Path, results_dir: Path
) -> ExperimentRecord:
    """Write the experiment's per-example test NLLs and, last (it marks the experiment as finished), its record."""
    row, paper_nll = load_plan().reference(experiment.paper)
    record = ExperimentRecord.of(
        run, name=experiment.name, profile=profile, identity=experiment.identity(), architecture=experiment.architecture,
        note=experiment.note, paper=PaperReference(experiment.paper, row, paper_nll), split="test", **figures,
    )  # fmt: skip
    write_bytes(per_example_path(results_dir, experiment.name), (run_dir / PER_EXAMPLE).read_bytes())
    write_record(record, metrics_path(results_dir, experiment.name))
    return record


UNRECORDED_DRAW = "100 samples from mask 0, generator torch.Generator().manual_seed(0)"  # a record without samples_drawn


def drawn_text(masks: Sequence[int], n: int, seed: int) -> str:
    """How a sample grid is drawn, in words (the record's ``samples_drawn``).

    >>> drawn_text(range(4), 100, 0).split(", generator")[0]
    '100 samples from the 4-mask ensemble (masks 0 to 3): one mask drawn uniformly per sample'
    >>> drawn_text(range(1), 100, 0) == UNRECORDED_DRAW
    True
    """
    which = f"mask {masks[0]}" if len(masks) == 1 else f"the {len(masks)}-mask ensemble (masks {masks[0]} to {masks[-1]})"
    how = ": one mask drawn uniformly per sample" if len(masks) > 1 else ""
    return f"{n} samples from {which}{how}, generator torch.Generator().manual_seed({seed})"


def write_samples(
    model: MADE, data: BinaryDataset, path: Path, name: str, test_nll: NLL, test_masks: int, n: int = 100, seed: int = 0
) -> tuple[str, str]:
    """A 10x10 grid of exact samples of the masks the test NLL averages (an ensemble: one of its masks drawn uniformly
    per sample), seeded; returns its path under results and how it was drawn (its title says both and the test NLL)."""
    masks = model.mask_set.ensemble(test_masks)
    samples = sample_ensemble(model, n, masks, torch.Generator().manual_seed(seed))
    drawn = drawn_text(masks, n, seed)
    title = f"{name}: test NLL {plus_minus(test_nll.nats, test_nll.stderr)} nats\n" + textwrap.fill(drawn, 80)
    save_grid(samples.cpu().numpy(), path, data.image_shape, title=title, title_size=9)
    return str(path.relative_to(path.parents[1])), drawn
