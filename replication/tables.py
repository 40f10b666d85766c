"""Tables of a replication: our NLLs next to the paper's, the ensemble gains, and the cost (pandas DataFrames)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .experiment_record import ExperimentRecord
from .experiments import UNAVAILABLE, Experiment, Plan, data_unavailable, finished_metrics, load_plan, per_example_path
from .files import write_text
from .model.config import single_mask

# written as results/<name>.csv and .md
TABLES = ("nll_mnist", "nll_uci", "ensemble_gain", "variations", "official_trainer", "trained_masks", "cost")
REPRODUCED_WITHIN = 1.0  # nats
ARCHITECTURE_VS_PAPER = {
    "paper": "equal to the paper's",
    "reduced": "reduced CPU stand-in",
    "assumed": "assumed equal (1x500 as the official DNA command)",
}
MASK_FIELDS = {"num_masks", "order_agnostic", "connectivity_agnostic", "random_ordering", "valid_masks", "test_masks",
               "mask_schedule", "max_epochs"}  # fmt: skip


def vs_paper(plan: Plan, experiment: Experiment) -> str:
    """How the architecture relates to the paper's: a narrower stand-in whose reference has its own width (the paper's
    500-unit figure) is compared like with like, so it is not called a stand-in there."""
    same_width = plan.reference_units(experiment.paper) is not None and plan.comparable(experiment)
    if experiment.architecture == "reduced" and same_width:
        return "same width as its paper reference"
    return ARCHITECTURE_VS_PAPER[experiment.architecture]


def verdict(ours: float, paper: float) -> str:
    """``better`` (more than 1 nat below the paper), ``reproduced`` (within 1 nat) or ``gap``."""
    difference = ours - paper
    if difference < -REPRODUCED_WITHIN:
        return "better"
    return "reproduced" if difference <= REPRODUCED_WITHIN else "gap"


def architecture_text(experiment: Experiment) -> str:
    r = experiment.recipe
    hidden = r["hidden_sizes"]
    text = f"{len(hidden)}x{hidden[0]}" if len(set(hidden)) == 1 else str(hidden)
    return f"{text} {r['activation']}, {'direct' if r['direct'] else 'no direct'}"


def masks_text(recipe: dict[str, Any]) -> str:
    """Masks for training / for the test ensemble; 0 training masks means a new mask every minibatch."""
    return f"{recipe['num_masks'] or 'new per batch'}/{recipe['test_masks']}"


def status_of(results_dir: Path, experiment: Experiment) -> str:
    """The verdict column of an unfinished experiment: failed, data not available, or not run yet."""
    failed = results_dir / "failed" / f"{experiment.name}.txt"
    if failed.is_file():
        return f"failed: {failed.read_text().strip()}"
    if data_unavailable(experiment):
        return UNAVAILABLE
    return "long run, not finished" if experiment.long_run else "not run yet"


def nll_table(results_dir: str | Path, profile: str, family: str) -> pd.DataFrame:
    """One row per plan entry of ``family`` ("mnist" or "uci") in ``profile``, next to the paper's number: the mean
    test NLL over its finished seeds, their standard deviation, and one run's standard error over test examples."""
    results_dir, plan = Path(results_dir), load_plan()
    rows = []
    for experiment in (e for e in plan.rows(profile) if e.family == family):
        paper_row, paper_nll = plan.reference(experiment.paper)
        runs = plan.seed_runs(experiment.name, profile)
        finished = [m for m in (finished_metrics(run, results_dir) for run in runs) if m is not None]
        row = {
            "experiment": experiment.name,
            "data set": experiment.dataset,
            "architecture": architecture_text(experiment),
            "vs paper": vs_paper(plan, experiment),
            "masks (train/test)": masks_text(experiment.recipe),
            "seeds": len(finished),
            "test NLL": None,
            "sd over seeds": None,
            "stderr": None,
            "paper row": paper_row,
            "paper NLL": paper_nll,
            "difference": None,
            "verdict": status_of(results_dir, experiment),
        }
        if finished:
            nlls = [m.test_nll.nats for m in finished]
            ours = statistics.fmean(nlls)
            row.update({"test NLL": ours, "stderr": finished[0].test_nll.stderr})
            row.update({"sd over seeds": statistics.stdev(nlls) if len(nlls) > 1 else None})
            if plan.comparable(experiment):
                row.update({"difference": ours - paper_nll, "verdict": verdict(ours, paper_nll)})
            else:
                row["verdict"] = "reference only"
            capped = [m for m in finished if not m.stopped_early]
            if capped:  # never a silent verdict for a run that did not converge
                row["verdict"] = f"STOPPED AT ITS EPOCH CAP ({capped[0].train_config.max_epochs}): not converged"
        rows.append(row)
    return pd.DataFrame(rows)


def stop_reason(metrics: ExperimentRecord) -> str:
    """Why training ended: the look-ahead ran out, or the recipe's epoch cap cut it short."""
    if metrics.stopped_early:
        return "early stopping"
    return f"epoch cap ({metrics.train_config.max_epochs})"


def cost_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """Epochs, why training stopped and wall time of every finished experiment (the cost of the replication)."""
    rows = []
    for experiment in load_plan().for_profile(profile):
        metrics = finished_metrics(experiment, results_dir)
        if metrics is None:
            continue
        rows.append({
            "experiment": experiment.name,
            "epochs": metrics.epochs,
            "best epoch": metrics.best_epoch,
            "stopped by": stop_reason(metrics),
            "s/epoch": metrics.seconds_per_epoch,
            "train min": metrics.train_seconds / 60,
            "eval s": metrics.eval_seconds,
            "device": metrics.device,
        })  # fmt: skip
    return pd.DataFrame(rows)


def one_mask_twin(experiment: Experiment, candidates: list[Experiment]) -> Experiment | None:
    """The experiment that trains the same network with one fixed mask: every other recipe field equal, and the same kind
    of ordering (random, as the official trainer draws it, or the natural one)."""

    def same_network(other: Experiment) -> bool:
        mine, theirs = ({k: v for k, v in e.recipe.items() if k not in MASK_FIELDS} for e in (experiment, other))
        return other.dataset == experiment.dataset and mine == theirs

    def random_order(recipe: dict[str, Any]) -> bool:  # random orderings (one or per mask), or the natural one
        return recipe["order_agnostic"] or recipe["random_ordering"]

    for other in candidates:
        r = other.recipe
        one_fixed_mask = single_mask(r["num_masks"]) and not (r["order_agnostic"] or r["connectivity_agnostic"])
        if one_fixed_mask and random_order(r) == random_order(experiment.recipe) and same_network(other):
            return other
    return None


def resampled_text(recipe: dict[str, Any]) -> str:
    parts = [name for name, key in (("ordering", "order_agnostic"), ("connectivity", "connectivity_agnostic")) if recipe[key]]
    return " + ".join(parts) or "nothing"


def paired_stderr(results_dir: Path, a: str, b: str) -> float | None:
    """Standard error of the mean per-example difference of two experiments' test NLLs (same test examples)."""
    paths = [per_example_path(results_dir, name) for name in (a, b)]
    if not all(p.is_file() for p in paths):
        return None
    first, second = (np.load(p).astype(np.float64) for p in paths)
    if first.shape != second.shape or first.size < 2:
        return None
    return float(np.std(first - second, ddof=1) / np.sqrt(first.size))


def seed_pairs(plan: Plan, experiment: Experiment, twin: Experiment, profile: str, results_dir: Path) -> list[tuple]:
    """The finished (K-mask run, twin run) pairs with the same seed, with their metrics: ``(run, twin_run, ours, theirs)``."""
    twins = {run.recipe["seed"]: run for run in plan.seed_runs(twin.row, profile)}
    pairs = []
    for run in plan.seed_runs(experiment.row, profile):
        twin_run = twins.get(run.recipe["seed"])
        ours, theirs = finished_metrics(run, results_dir), twin_run and finished_metrics(twin_run, results_dir)
        if ours is not None and theirs is not None:
            pairs.append((run, twin_run, ours, theirs))
    return pairs


def first_paired_stderr(results_dir: Path, pairs: list[tuple]) -> float | None:
    """One pair's paired standard error: that of the first pair whose per-example NLLs were both saved."""
    errors = (paired_stderr(results_dir, run.name, twin_run.name) for run, twin_run, _, _ in pairs)
    return next((se for se in errors if se is not None), None)


def seed_label(plan: Plan, run: Experiment, profile: str) -> str:
    """A run's name, with its seed when its row has several (the row's NLL elsewhere is then their mean)."""
    return run.name if len(plan.seed_runs(run.row, profile)) == 1 else f"{run.name} (seed {run.recipe['seed']})"


def twin_label(plan: Plan, twin: Experiment, pairs: list[tuple], profile: str, results_dir: Path) -> str:
    """The twin's name, with the seeds paired when they are fewer than the twin's finished seeds (its row in the NLL
    table is then the mean over more seeds than this comparison uses)."""
    finished = [run for run in plan.seed_runs(twin.row, profile) if finished_metrics(run, results_dir) is not None]
    if len(pairs) == len(finished):
        return twin.name
    seeds = ", ".join(str(run.recipe["seed"]) for _, run, _, _ in pairs)
    return f"{twin.name} (seed{'s' if len(pairs) > 1 else ''} {seeds})"


def ensemble_gain_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """Each finished K-mask experiment against its 1-mask twin (same recipe, one mask), seed by seed.

    Gain = twin NLL - ensemble NLL: its mean over the seeds both have run, its spread over those seeds, and one pair's
    paired standard error over test examples (the first pair whose per-example NLLs were saved); beside the paper's
    gain at the same width where it has one."""
    plan, results_dir = load_plan(), Path(results_dir)
    experiments = plan.for_profile(profile)
    rows = []
    for experiment in plan.rows(profile):
        if single_mask(experiment.recipe["num_masks"]):
            continue
        twin = one_mask_twin(experiment, experiments)
        pairs = seed_pairs(plan, experiment, twin, profile, results_dir) if twin is not None else []
        if not pairs:
            continue
        gains = [theirs.test_nll.nats - ours.test_nll.nats for _, _, ours, theirs in pairs]
        (_, paper_k), (_, paper_1) = plan.reference(experiment.paper), plan.reference(twin.paper)
        same_width = plan.comparable(experiment) and plan.comparable(twin)
        rows.append({
            "K-mask experiment": experiment.name,
            "architecture": architecture_text(experiment),
            "resampled": resampled_text(experiment.recipe),
            "masks (train/test)": masks_text(experiment.recipe),
            "seeds": len(pairs),
            "ensemble test NLL": statistics.fmean(o.test_nll.nats for _, _, o, _ in pairs),
            "1-mask twin": twin_label(plan, twin, pairs, profile, results_dir),
            "twin test NLL": statistics.fmean(t.test_nll.nats for _, _, _, t in pairs),
            "gain (nats)": statistics.fmean(gains),
            "paired stderr": first_paired_stderr(results_dir, pairs),
            "sd over seeds": statistics.stdev(gains) if len(gains) > 1 else None,
            "paper's gain at this width": f"{paper_1 - paper_k:.2f}" if same_width else "n/a (no same-width pair in the paper)",
        })  # fmt: skip
    return pd.DataFrame(rows)


def variations_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """Each finished run that changes one thing of another row (its ``varies``), against that row: what differs,
    both test NLLs, the difference (variant minus base: negative is better) and its paired standard error."""
    plan, results_dir = load_plan(), Path(results_dir)
    rows = []
    for experiment in plan.rows(profile):
        base_name = plan.experiments[experiment.row].get("varies")
        base = plan.experiment(base_name, profile) if base_name else None
        ours = finished_metrics(experiment, results_dir) if base else None
        theirs = finished_metrics(base, results_dir) if ours else None
        if theirs is None:
            continue
        differs = [f"{k} {base.recipe[k]} -> {v}" for k, v in experiment.recipe.items() if base.recipe.get(k) != v]
        difference, stderr = ours.test_nll.nats - theirs.test_nll.nats, paired_stderr(results_dir, experiment.name, base.name)
        rows.append({
            "variant": experiment.name,
            "varies": seed_label(plan, base, profile),
            "what differs": "; ".join(differs),
            "variant test NLL": ours.test_nll.nats,
            "base test NLL": theirs.test_nll.nats,
            "difference": difference,
            "paired stderr": stderr,
            "z": difference / stderr if stderr else None,
            "epochs (variant/base)": f"{ours.epochs}/{theirs.epochs}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def official_trainer_table(results_dir: str | Path, profile: str, variations: pd.DataFrame) -> pd.DataFrame:
    """One row per known difference from the official trainer (``[[official_trainer]]``) with its measured effect: the
    difference each measuring run makes to the row it varies (± paired stderr), or why it was not measured."""
    plan, rows = load_plan(), []
    in_profile = {e.name for e in plan.rows(profile)}
    measured = {r["variant"]: r for r in variations.to_dict("records")}
    for entry in plan.official_trainer:
        effects = []
        for name in entry.get("measured_by", []):
            if name not in in_profile:
                profiles = ", ".join(plan.experiments[name]["profiles"])
                effects.append(f"{name}: measured in the {profiles} profile (its results folder)")
            elif name in measured:
                r = measured[name]
                se = f" ± {r['paired stderr']:.2f}" if pd.notna(r["paired stderr"]) else " (no paired stderr)"
                effects.append(f"{name}: {r['difference']:+.2f}{se} against {r['varies']}")
            else:
                effects.append(f"{name}: {status_of(Path(results_dir), plan.experiment(name, profile))}")
        for name in entry.get("seed_spread", []):
            runs = [m for run in plan.seed_runs(name, profile) if (m := finished_metrics(run, results_dir))]
            if len(runs) > 1:
                sd = statistics.stdev(m.test_nll.nats for m in runs)
                effects.append(f"{name}: sd {sd:.2f} over {len(runs)} seeds")
        rows.append({
            "difference from the official trainer": entry["difference"],
            "measured effect on the test NLL (nats; + is worse)": "; ".join(effects) or entry.get("unmeasured", "not measured"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def trained_masks_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """The paper's 500-unit experiment: each model of ``[curve] trained_with_k``, trained with K masks and tested on its
    K-mask ensemble."""
    plan, rows = load_plan(), []
    for name in plan.curve.get("trained_with_k", []):
        experiment = next((e for e in plan.rows(profile) if e.name == name), None)
        metrics = finished_metrics(experiment, results_dir) if experiment else None
        if metrics is None:
            continue
        rows.append({
            "masks K": experiment.recipe["num_masks"],
            "experiment": name,
            "seed": experiment.recipe["seed"],
            "valid masks": metrics.train_config.valid_masks,
            "test masks": metrics.test_masks,
            "test NLL": metrics.test_nll.nats,
            "stderr": metrics.test_nll.stderr,
            "epochs": metrics.epochs,
        })  # fmt: skip
    return pd.DataFrame(rows)


def experiment_summary(metrics: ExperimentRecord) -> pd.DataFrame:
    """One experiment's result next to the paper's number (for its notebook)."""
    ours, paper = metrics.test_nll.nats, metrics.paper.nll
    units = load_plan().reference_units(metrics.paper.key)
    comparable = units is None or units == max(metrics.model_config.hidden_sizes)
    return pd.DataFrame([{
        "experiment": metrics.name, "split": metrics.split, "test NLL": ours,
        "stderr": metrics.test_nll.stderr, "valid NLL": metrics.valid_nll.nats,
        "paper row": metrics.paper.row, "paper NLL": paper, "difference": ours - paper if comparable else None,
        "verdict": verdict(ours, paper) if comparable else "reference only",
        "vs paper": vs_paper(load_plan(), load_plan().experiment(metrics.name, metrics.profile)),
        "epochs": metrics.epochs, "best epoch": metrics.best_epoch, "train min": metrics.train_seconds / 60,
    }]).round(2).assign(stderr=round(metrics.test_nll.stderr, 3))  # fmt: skip


def number_format(column: str) -> str:
    """Fixed decimals: three for standard errors, one for minutes and seconds of evaluation, two otherwise."""
    if "stderr" in column or "sd over" in column:
        return ".3f"
    return ".1f" if column in ("train min", "eval s") else ".2f"


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table with fixed decimals (pandas' ``to_markdown``, through tabulate)."""
    if frame.empty:
        return "_(no rows)_\n"
    formats = tuple(number_format(str(c)) for c in frame.columns)
    cells = frame.astype(object).where(frame.notna(), None)  # missing numbers print as empty cells, not "nan"
    return cells.to_markdown(index=False, floatfmt=formats, missingval="") + "\n"


def save_table(frame: pd.DataFrame, stem: Path) -> None:
    """``stem.csv`` and ``stem.md``, each written atomically and only when its content changed."""
    write_text(stem.with_suffix(".csv"), frame.to_csv(index=False))
    write_text(stem.with_suffix(".md"), to_markdown(frame))


def all_tables(results_dir: str | Path, profile: str) -> dict[str, pd.DataFrame]:
    """Every table of :data:`TABLES`."""
    variations = variations_table(results_dir, profile)
    tables = {
        "nll_mnist": nll_table(results_dir, profile, "mnist"),
        "nll_uci": nll_table(results_dir, profile, "uci"),
        "ensemble_gain": ensemble_gain_table(results_dir, profile),
        "variations": variations,
        "official_trainer": official_trainer_table(results_dir, profile, variations),
        "trained_masks": trained_masks_table(results_dir, profile),
        "cost": cost_table(results_dir, profile),
    }
    assert tuple(tables) == TABLES
    return tables


AGREES_WITHIN = 2.0  # standard errors of the difference


def compare_table(rerun_dir: str | Path, reference_dir: str | Path, profile: str) -> pd.DataFrame:
    """Every experiment of ``profile``: the rerun's test NLL against the reference folder's, with a verdict.

    The difference's uncertainty is the two standard errors combined (``sqrt(se1^2 + se2^2)``); a rerun *agrees*
    when it lies within two of them.  A rerun on the same machine with the same recipe and seed reproduces the
    number exactly; another machine or seed moves it by run-to-run noise, which this does not bound.
    """
    rows = []
    for experiment in load_plan().for_profile(profile):
        rerun, reference = (finished_metrics(experiment, d) for d in (rerun_dir, reference_dir))
        row = {"experiment": experiment.name, "reference NLL": None, "rerun NLL": None, "difference": None,
               "stderr of difference": None, "verdict": "in neither"}  # fmt: skip
        if reference is not None:
            row["reference NLL"] = reference.test_nll.nats
        if rerun is not None:
            row["rerun NLL"] = rerun.test_nll.nats
        if rerun is not None and reference is not None:
            difference = rerun.test_nll.nats - reference.test_nll.nats
            stderr = (rerun.test_nll.stderr**2 + reference.test_nll.stderr**2) ** 0.5
            agrees = abs(difference) <= AGREES_WITHIN * stderr
            row.update({"difference": difference, "stderr of difference": stderr,
                        "verdict": ("identical" if difference == 0 else "agrees") if agrees else "differs"})  # fmt: skip
        elif rerun is not None or reference is not None:
            row["verdict"] = "only in the rerun" if rerun is not None else "not in the rerun"
        rows.append(row)
    return pd.DataFrame(rows)
