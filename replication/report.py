"""Tables and figures of a replication: our NLLs next to the paper's, costs, the masks curve, results/README.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ReplicationError
from .evaluate import evaluate_nll
from .experiments import Experiment, finished_metrics, is_complete, load_data, load_plan
from .runs import load_model, write_json

REPRODUCED_WITHIN = 1.0  # nats
ARCHITECTURE_VS_PAPER = {
    "paper": "equal to the paper's",
    "reduced": "reduced CPU stand-in",
    "assumed": "assumed equal (1x500 as the official DNA command)",
}


def verdict(ours: float, paper: float) -> str:
    """``better`` (more than 1 nat below the paper), ``reproduced`` (within 1 nat) or ``gap``."""
    difference = ours - paper
    if difference < -REPRODUCED_WITHIN:
        return "better"
    return "reproduced" if difference <= REPRODUCED_WITHIN else "gap"


def architecture_text(experiment: Experiment) -> str:
    r = experiment.recipe
    text = "x".join(map(str, [len(r["hidden"]), r["hidden"][0]])) if len(set(r["hidden"])) == 1 else str(r["hidden"])
    return f"{text} {r['activation']}, {'direct' if r['direct'] else 'no direct'}"


def masks_text(recipe: dict[str, Any]) -> str:
    """Masks for training / for the test ensemble; 0 training masks means a new mask every minibatch."""
    return f"{recipe['masks'] or 'new per batch'}/{recipe['test_masks']}"


def status_of(results_dir: Path, name: str) -> str:
    failed = results_dir / "failed" / f"{name}.txt"
    return f"failed: {failed.read_text().strip()}" if failed.is_file() else "not run yet"


def nll_table(results_dir: str | Path, profile: str, family: str) -> pd.DataFrame:
    """One row per experiment of ``family`` ("mnist" or "uci") in ``profile``, next to the paper's number."""
    results_dir, plan = Path(results_dir), load_plan()
    rows = []
    for experiment in (e for e in plan.for_profile(profile) if e.family == family):
        paper_row, paper_nll = plan.reference(experiment.paper)
        metrics = finished_metrics(experiment, results_dir)
        r = experiment.recipe
        row = {
            "experiment": experiment.name,
            "data set": experiment.dataset,
            "architecture": architecture_text(experiment),
            "vs paper": ARCHITECTURE_VS_PAPER[experiment.architecture],
            "masks (train/test)": masks_text(r),
            "test NLL": None,
            "stderr": None,
            "paper row": paper_row,
            "paper NLL": paper_nll,
            "difference": None,
            "verdict": status_of(results_dir, experiment.name),
        }
        if metrics is not None:
            ours = metrics["test_nll"]["nats"]
            row.update({"test NLL": round(ours, 2), "stderr": round(metrics["test_nll"]["stderr"], 2)})
            row.update({"difference": round(ours - paper_nll, 2), "verdict": verdict(ours, paper_nll)})
        rows.append(row)
    if family == "uci" and rows:
        covered = {row["data set"] for row in rows}
        for data in plan.paper["uci"]:
            if data == "table" or data in covered:
                continue
            for variant in ("single", "mask_sampling"):
                paper_row, paper_nll = plan.reference(f"uci.{data}.{variant}")
                rows.append({"experiment": "-", "data set": data, "paper row": paper_row, "paper NLL": paper_nll,
                             "verdict": "data not available here"})  # fmt: skip
    return pd.DataFrame(rows)


def stop_reason(metrics: dict[str, Any]) -> str:
    """Why training ended: the look-ahead ran out, or the recipe's epoch cap cut it short."""
    if metrics["stopped_early"]:
        return "early stopping"
    return f"epoch cap ({metrics['train_config']['max_epochs']})"


def cost_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """Epochs, why training stopped and wall time of every finished experiment (the cost of the replication)."""
    rows = []
    for experiment in load_plan().for_profile(profile):
        metrics = finished_metrics(experiment, results_dir)
        if metrics is None:
            continue
        rows.append({
            "experiment": experiment.name,
            "epochs": metrics["epochs"],
            "best epoch": metrics["best_epoch"],
            "stopped by": stop_reason(metrics),
            "s/epoch": round(metrics["seconds_per_epoch"], 2),
            "train min": round(metrics["train_seconds"] / 60, 1),
            "eval s": round(metrics["eval_seconds"], 1),
            "device": metrics["device"],
        })  # fmt: skip
    return pd.DataFrame(rows)


MASK_FIELDS = {"masks", "order_agnostic", "connectivity_agnostic", "valid_masks", "test_masks", "max_epochs"}


def one_mask_twin(experiment: Experiment, candidates: list[Experiment]) -> Experiment | None:
    """The experiment that trains the same network with one fixed mask (every other recipe field equal)."""

    def same_network(other: Experiment) -> bool:
        mine, theirs = ({k: v for k, v in e.recipe.items() if k not in MASK_FIELDS} for e in (experiment, other))
        return other.dataset == experiment.dataset and mine == theirs

    for other in candidates:
        r = other.recipe
        if r["masks"] == 1 and not (r["order_agnostic"] or r["connectivity_agnostic"]) and same_network(other):
            return other
    return None


def resampled_text(recipe: dict[str, Any]) -> str:
    parts = [name for name, key in (("ordering", "order_agnostic"), ("connectivity", "connectivity_agnostic")) if recipe[key]]
    return " + ".join(parts) or "nothing"


def claim_status(gain: float, paper_gain: float, claim: float) -> str:
    """``met`` / ``not met``; ``n/a`` where the paper's own rows do not show the gain (masks hurt there too)."""
    if paper_gain < claim:
        return "n/a (paper's gain below the claim)"
    return "met" if gain >= claim else "not met"


def ensemble_gain_table(results_dir: str | Path, profile: str) -> pd.DataFrame:
    """Each finished K-mask experiment against its 1-mask twin: does the mask ensemble help, as the paper claims?"""
    plan = load_plan()
    claim = float(plan.curve["claim_nats"])
    experiments = plan.for_profile(profile)
    rows = []
    for experiment in experiments:
        if experiment.recipe["masks"] == 1:
            continue
        twin = one_mask_twin(experiment, experiments)
        if twin is None:
            continue
        ours, theirs = finished_metrics(experiment, results_dir), finished_metrics(twin, results_dir)
        if ours is None or theirs is None:
            continue
        ensemble, single = ours["test_nll"]["nats"], theirs["test_nll"]["nats"]
        (_, paper_k), (_, paper_1) = plan.reference(experiment.paper), plan.reference(twin.paper)
        rows.append({
            "K-mask experiment": experiment.name,
            "architecture": architecture_text(experiment),
            "resampled": resampled_text(experiment.recipe),
            "masks (train/test)": masks_text(experiment.recipe),
            "ensemble test NLL": round(ensemble, 2),
            "1-mask twin": twin.name,
            "twin test NLL": round(single, 2),
            "gain (nats)": round(single - ensemble, 2),
            "paper's gain": round(paper_1 - paper_k, 2),
            f"claim (gain >= {claim:g})": claim_status(single - ensemble, paper_1 - paper_k, claim),
        })  # fmt: skip
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    if frame.empty:
        return "_(no rows)_\n"
    cells = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def save_table(frame: pd.DataFrame, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(stem.with_suffix(".csv"), index=False)
    stem.with_suffix(".md").write_text(to_markdown(frame))


def masks_curve(profile: str, results_dir: str | Path = "results", runs_dir: str | Path = "runs") -> pd.DataFrame:
    """Test NLL of the ensemble of the first n masks of each K-mask model of ``[curve]`` (those of this profile
    that have finished), for the profile's n values, with each model's 1-mask twin as a reference line."""
    plan = load_plan()
    counts = plan.profiles[profile]["mask_counts"]
    results_dir = Path(results_dir)
    path = results_dir / "masks_curve.json"
    in_profile = plan.for_profile(profile)
    chosen = [e for e in in_profile if e.name in plan.curve["experiments"]]
    finished = [e for e in chosen if is_complete(e, results_dir)]
    if not finished:
        names = ", ".join(e.name for e in chosen)
        raise ReplicationError(f"the masks curve needs one of {names} to finish first (profile {profile})")
    for experiment in chosen:
        if experiment not in finished:
            print(f"masks curve: {experiment.name} has not finished; drawn without it")
    twins = {e.name: twin_point(e, in_profile, results_dir) for e in finished}
    identity = {"experiments": [e.identity() for e in finished], "counts": counts, "twins": twins}
    saved = json.loads(path.read_text()) if path.is_file() else None
    if saved is not None and saved["identity"] == identity:
        return pd.DataFrame(saved["rows"])
    rows = []
    for experiment in finished:
        model = load_model(experiment.run_dir(runs_dir, profile))
        test = load_data(experiment).test
        for n in counts:
            started = time.perf_counter()
            nll = evaluate_nll(model, test, n_masks=n)
            rows.append({"experiment": experiment.name, "masks": n, "test NLL": nll.nats, "stderr": nll.stderr,
                         "seconds": time.perf_counter() - started})  # fmt: skip
    write_json({"identity": identity, "rows": rows}, path)
    frame = pd.DataFrame(rows)
    frame.to_csv(results_dir / "masks_curve.csv", index=False)
    paper = [plan.reference(f"mnist.{key}") for key in plan.curve["paper_rows"]]
    plot_masks_curve(frame, paper, results_dir / "figures" / "nll_vs_masks.png", twins)
    return frame


def twin_point(experiment: Experiment, candidates: list[Experiment], results_dir: Path) -> list | None:
    """[name, test NLL] of the finished 1-mask twin of ``experiment`` (a list: JSON keeps it equal), or None."""
    twin = one_mask_twin(experiment, candidates)
    metrics = finished_metrics(twin, results_dir) if twin else None
    return [twin.name, metrics["test_nll"]["nats"]] if metrics else None


def plot_masks_curve(
    frame: pd.DataFrame, paper: list[tuple[str, float]], path: Path, twins: dict[str, list | None] | None = None
) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for i, (name, curve) in enumerate(frame.groupby("experiment", sort=False)):
        color = f"C{i}"
        ax.errorbar(curve["masks"], curve["test NLL"], yerr=curve["stderr"], marker="o", color=color,
                    label=f"ours: {name}, ensemble of n masks")  # fmt: skip
        twin = (twins or {}).get(name)
        if twin is not None:
            ax.axhline(twin[1], color=color, ls="--", label=f"ours: {twin[0]}, trained with 1 mask ({twin[1]:.2f})")
    for i, ((row, nll), n, marker) in enumerate(zip(paper, (1, 32), ("s", "D"))):
        ax.scatter([n], [nll], marker=marker, s=60, zorder=3, color="k" if i else "gray",
                   label=f"paper (8000 units): {row} ({nll})")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of masks n in the test ensemble")
    ax.set_ylabel("test NLL (nats)")
    ax.set_title("Binarized MNIST: NLL vs number of masks")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def experiment_summary(metrics: dict[str, Any]) -> pd.DataFrame:
    """One experiment's result next to the paper's number (for its notebook)."""
    ours, paper = metrics["test_nll"]["nats"], metrics["paper"]["nll"]
    return pd.DataFrame([{
        "experiment": metrics["name"], "split": metrics["split"], "test NLL": round(ours, 2),
        "stderr": round(metrics["test_nll"]["stderr"], 2), "valid NLL": round(metrics["valid_nll"]["nats"], 2),
        "paper row": metrics["paper"]["row"], "paper NLL": paper, "difference": round(ours - paper, 2),
        "verdict": verdict(ours, paper), "architecture": metrics["architecture"], "epochs": metrics["epochs"],
        "best epoch": metrics["best_epoch"], "train min": round(metrics["train_seconds"] / 60, 1),
    }])  # fmt: skip


def plot_history(metrics: dict[str, Any]):
    """Training and validation NLL per epoch (a matplotlib Figure, for notebooks)."""
    from matplotlib.figure import Figure

    history = pd.DataFrame(metrics["history"])
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(history["epoch"], history["train_nll"], label="train")
    ax.plot(history["epoch"], history["valid_nll"], label=f"valid ({metrics['train_config']['valid_masks']} mask(s))")
    ax.axvline(metrics["best_epoch"], color="gray", ls=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats)")
    ax.legend()
    return fig


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def headline(tables: dict[str, pd.DataFrame]) -> str:
    """The compact results block for the project README."""
    columns = [
        "experiment",
        "masks (train/test)",
        "test NLL",
        "stderr",
        "paper row",
        "paper NLL",
        "difference",
        "verdict",
        "vs paper",
    ]
    parts = []
    for title, key in (("Binarized MNIST", "nll_mnist"), ("UCI", "nll_uci")):
        frame = tables[key]
        if not frame.empty:
            parts.append(f"**{title}** (test NLL in nats)\n\n" + to_markdown(frame[[c for c in columns if c in frame]]))
    gain = tables.get("ensemble_gain")
    if gain is not None and not gain.empty:
        keep = [c for c in gain.columns if c not in ("architecture", "masks (train/test)")]
        parts.append("**Do mask ensembles help?** (K-mask ensemble vs the same network trained with one mask)\n\n"
                     + to_markdown(gain[keep]))  # fmt: skip
    return "\n".join(parts)


def update_project_readme(readme: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Replace the block between the results markers of the project README with the current tables."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ReplicationError(f"{readme} lacks the {README_START} / {README_END} markers")
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    block = "\n_Generated by `make replicate` from `results/`; details in [results/README.md](results/README.md)._\n\n"
    readme.write_text(before + README_START + block + headline(tables) + README_END + after)


def write_summary(
    results_dir: str | Path, profile: str, wall_seconds: float | None = None, project_readme: str | Path | None = None
) -> dict[str, pd.DataFrame]:
    """Write every table and ``results_dir/README.md`` (and the project README's results block); return the tables."""
    results_dir = Path(results_dir)
    tables = {
        "nll_mnist": nll_table(results_dir, profile, "mnist"),
        "nll_uci": nll_table(results_dir, profile, "uci"),
        "cost": cost_table(results_dir, profile),
        "ensemble_gain": ensemble_gain_table(results_dir, profile),
    }
    for stem, frame in tables.items():
        save_table(frame, results_dir / stem)
    (results_dir / "README.md").write_text(results_readme(results_dir, profile, tables, wall_seconds))
    if project_readme:
        update_project_readme(Path(project_readme), tables)
    return tables


def results_readme(results_dir: Path, profile: str, tables: dict[str, pd.DataFrame], wall_seconds: float | None) -> str:
    plan = load_plan()
    compute = tables["cost"]["train min"].sum() if not tables["cost"].empty else 0.0
    lines = [
        "# Results",
        "",
        f"Generated by `make replicate PROFILE={profile}` ({plan.profiles[profile]['description']}).",
        "All NLLs are on the **test split**, in nats, with standard errors (std / sqrt(N)); K-mask models are",
        "evaluated as ensembles (log of the mean of the masks' probabilities). Verdict: `better` (more than 1 nat",
        "below the paper), `reproduced` (within 1 nat), `gap` (more than 1 nat above). `reduced CPU stand-in` rows",
        "use narrower layers than the paper and are compared with the paper's row for reference only.",
        "",
        f"Total training time of the finished experiments (one or two CPU threads each): {compute:.0f} min"
        + (
            f"; the last `make replicate` invocation took {wall_seconds / 60:.1f} min of wall time (it skips"
            " finished experiments, so this is the cost of what was left to do)."
            if wall_seconds
            else "."
        ),
        "",
        "## Binarized MNIST",
        "",
        to_markdown(tables["nll_mnist"]),
        "## UCI data sets",
        "",
        to_markdown(tables["nll_uci"]),
        "## Do mask ensembles help? Each K-mask model against the same network trained with one mask",
        "",
        "The paper's claim: training with K masks and testing the K-mask ensemble beats one mask (its gain, at",
        "its own widths, is in the column `paper's gain`). Gain = twin test NLL - ensemble test NLL; the claim is",
        f"met at {plan.curve['claim_nats']:g} nats or more. The twin has the same recipe except the masks.",
        "",
        to_markdown(tables["ensemble_gain"]),
    ]
    if (results_dir / "figures" / "nll_vs_masks.png").is_file():
        lines += ["## NLL vs number of masks", "", "![NLL vs number of masks](figures/nll_vs_masks.png)", ""]
    samples = sorted((results_dir / "samples").glob("*.png"))
    if samples:
        lines += ["## Samples (exact ancestral samples, 10x10 grids)", ""]
        lines += [f"**{p.stem}**\n\n![{p.stem}](samples/{p.name})\n" for p in samples]
    lines += ["## CPU cost", "", to_markdown(tables["cost"])]
    notebooks = sorted((results_dir / "notebooks").glob("*.ipynb"))
    if notebooks:
        lines += ["## Executed notebooks", ""] + [f"- [{p.stem}](notebooks/{p.name})" for p in notebooks] + [""]
    return "\n".join(lines)
