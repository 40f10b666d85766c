"""The masks curve: test NLL of the ensemble of the first n masks of each K-mask model, for n in the profile's counts.

``masks_curve.json`` keeps the computed rows with the identity of what they were computed from (the models, their
trained weights' test NLL and the counts) and the 1-mask twins the figure was drawn with: only a new, changed or
retrained model is evaluated (which needs its trained model in ``runs/``); the others' rows are kept, and a new twin
only redraws the figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import NotFinished, ReplicationError
from .experiments import (
    Experiment,
    Plan,
    finished_metrics,
    is_complete,
    load_data,
    load_plan,
    replicate_command,
    shown,
)
from .figures import plot_masks_curve
from .files import write_json, write_text
from .tables import one_mask_twin
from .training.evaluate import evaluate_nll
from .training.runs import load_model

FIGURE = Path("figures") / "nll_vs_masks.png"
SAVED = "masks_curve.json"


def curve_models(plan: Plan, profile: str, results_dir: Path) -> tuple[list[Experiment], list[Experiment]]:
    """The ``[curve]`` models of this profile, and those of them that have finished."""
    chosen = [e for e in plan.for_profile(profile) if e.name in plan.curve["experiments"]]
    return chosen, [e for e in chosen if is_complete(e, results_dir)]


def rows_identity(profile: str, results_dir: Path) -> dict[str, Any]:
    """What the rows depend on: the finished models and the mask counts (JSON-stable)."""
    plan = load_plan()
    _, finished = curve_models(plan, profile, results_dir)
    return {"experiments": [e.identity() for e in finished], "counts": plan.profiles[profile]["mask_counts"]}


def fingerprints(profile: str, results_dir: Path) -> dict[str, float]:
    """Each finished curve model's test NLL: a model retrained under the same recipe (new weights) changes it."""
    plan = load_plan()
    _, finished = curve_models(plan, profile, results_dir)
    return {e.name: finished_metrics(e, results_dir).test_nll.nats for e in finished}


def twins(profile: str, results_dir: Path) -> dict[str, list | None]:
    """Each finished curve model's 1-mask twin point, as drawn in the figure."""
    plan = load_plan()
    _, finished = curve_models(plan, profile, results_dir)
    return {e.name: twin_point(e, plan.for_profile(profile), results_dir) for e in finished}


def saved(results_dir: Path) -> dict[str, Any] | None:
    path = results_dir / SAVED
    return json.loads(path.read_text()) if path.is_file() else None


def is_current(profile: str, results_dir: str | Path) -> bool:
    """Whether ``results_dir`` holds the curve of exactly the current finished models and twins (nothing to do)."""
    results_dir = Path(results_dir)
    state = saved(results_dir)
    return (state is not None and state.get("identity") == rows_identity(profile, results_dir)
            and state.get("models") == fingerprints(profile, results_dir)
            and state.get("twins") == twins(profile, results_dir))  # fmt: skip


def masks_curve(
    profile: str, results_dir: str | Path = "results", runs_dir: str | Path = "runs", compute: bool = True
) -> pd.DataFrame:
    """Test NLL of the ensemble of the first n masks of each K-mask model of ``[curve]`` (those of this profile
    that have finished), for the profile's n values, with each model's 1-mask twin as a reference line. With
    ``compute`` false it only reads: the saved curve when current, else :class:`NotFinished` (nothing written)."""
    plan, results_dir = load_plan(), Path(results_dir)
    chosen, finished = curve_models(plan, profile, results_dir)
    if not finished:
        names = ", ".join(e.name for e in chosen)
        raise ReplicationError(f"the masks curve needs one of {names} to finish first (profile {profile})")
    for experiment in chosen:
        if experiment not in finished:
            print(f"masks curve: {experiment.name} has not finished; drawn without it")
    paper = [plan.reference(f"mnist.{key}") for key in plan.curve["paper_rows"]]
    if is_current(profile, results_dir):  # the figure is redrawn from the saved rows (written only when it changed)
        print(f"masks curve: current, read from {results_dir / SAVED}")
        state = saved(results_dir)
        frame = pd.DataFrame(state["rows"])
        plot_masks_curve(frame, paper, results_dir / FIGURE, state["twins"])
        return frame
    if not compute:
        raise NotFinished(
            f"the masks curve in {shown(results_dir)} (profile {profile}) is missing or not drawn from its finished models; this "
            f"notebook only reads results: draw it with `{replicate_command(profile, results_dir)}`"
        )
    identity, models, state = rows_identity(profile, results_dir), fingerprints(profile, results_dir), saved(results_dir)
    kept = saved_rows(state, finished, identity, models)
    missing = [e for e in finished if e.name not in kept]
    computed = compute_rows(missing, identity, runs_dir, profile)
    rows = [row for e in finished for row in kept.get(e.name, [r for r in computed if r["experiment"] == e.name])]
    frame = pd.DataFrame(rows)
    write_text(results_dir / "masks_curve.csv", frame.to_csv(index=False))
    drawn_twins = twins(profile, results_dir)
    plot_masks_curve(frame, paper, results_dir / FIGURE, drawn_twins)
    write_json({"identity": identity, "models": models, "twins": drawn_twins, "rows": rows}, results_dir / SAVED)  # last
    return frame


def saved_rows(
    state: dict[str, Any] | None, finished: list[Experiment], identity: dict[str, Any], models: dict[str, float]
) -> dict[str, list]:
    """The saved rows of each finished model that was evaluated with the same identity, counts and trained weights
    (``models``: each one's test NLL): only new or retrained models are evaluated again (and only they need their
    checkpoints in ``runs/``). A file written before the weights were recorded is taken as of the current weights."""
    if state is None or state.get("identity", {}).get("counts") != identity["counts"]:
        return {}
    evaluated, weights = state["identity"]["experiments"], state.get("models", models)
    return {e.name: [r for r in state["rows"] if r["experiment"] == e.name] for e in finished
            if e.identity() in evaluated and weights.get(e.name) == models[e.name]
            and any(r["experiment"] == e.name for r in state["rows"])}  # fmt: skip


def compute_rows(finished: list[Experiment], identity: dict[str, Any], runs_dir: str | Path, profile: str) -> list[dict]:
    """Evaluate each finished model's n-mask ensembles on the test split (needs its ``model.pt`` in ``runs_dir``)."""
    rows = []
    for experiment in finished:
        model = load_model(experiment.run_dir(runs_dir, profile))
        test = load_data(experiment).test
        for n in identity["counts"]:
            started = time.perf_counter()
            nll = evaluate_nll(model, test, n_masks=n)
            rows.append({"experiment": experiment.name, "masks": n, "test NLL": nll.nats, "stderr": nll.stderr,
                         "seconds": time.perf_counter() - started})  # fmt: skip
    return rows


def twin_point(experiment: Experiment, candidates: list[Experiment], results_dir: Path) -> list | None:
    """[name, test NLL] of the finished 1-mask twin of ``experiment`` (a list: JSON keeps it equal), or None."""
    twin = one_mask_twin(experiment, candidates)
    metrics = finished_metrics(twin, results_dir) if twin else None
    return [twin.name, metrics.test_nll.nats] if metrics else None
