"""An experiment's executed notebook as a document: its title, its recipe as a table, the line that says how training
ended, and the caption of its sample grid (the notebook only calls these)."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd

from .experiment_record import ExperimentRecord
from .experiments import UNRECORDED_DRAW, Experiment, load_plan
from .tables import architecture_text, masks_text
from .training.evaluate import plus_minus


def description(experiment: Experiment, profile: str) -> str:
    """One line: the plan's note on the experiment, its data set, network and masks (training/test).

    >>> print(description(load_plan().experiment("mnist_1x500_4masks", "cpu"), "cpu"))  # doctest: +NORMALIZE_WHITESPACE
    ablation: 4 masks (ordering and connectivity resampled), 4-mask test ensemble
    (binarized_mnist; 1x500 relu, direct; masks 4/4; seed 1234).
    """
    seeds = len(load_plan().seed_runs(experiment.row, profile))
    seed = f"seed {experiment.recipe['seed']}" + (f", one of the {seeds} seeds whose mean the tables give" if seeds > 1 else "")
    network = f"{architecture_text(experiment)}; masks {masks_text(experiment.recipe)}"
    return f"{experiment.note} ({experiment.dataset}; {network}; {seed})."


def title(experiment: Experiment, profile: str) -> str:
    """The first markdown cell of an executed experiment notebook: its name, what it is, the paper's number it is set
    against, and what running it again does.

    >>> print(title(load_plan().experiment("uci_dna_single", "cpu"), "cpu").splitlines()[0])
    # uci_dna_single
    """
    row, nll = load_plan().reference(experiment.paper)
    return (
        f"# {experiment.name}\n\n{description(experiment, profile)}\n\nSet against the paper's row *{row}*: {nll:.2f} nats. "
        f"Executed by `make replicate` (profile {profile}); run again where it lies, it reads its finished result from "
        "`..` and never trains (`train = False` in its parameters)."
    )


def recipe_table(metrics: ExperimentRecord) -> pd.DataFrame:
    """The recorded recipe: every field of the model's and the training's configuration, then the test masks, each with
    its value and what it means.

    >>> from replication.experiments import ROOT
    >>> from replication.training.record import read_record
    >>> record = read_record(ROOT / "results" / "metrics" / "uci_dna_single.json", ExperimentRecord)
    >>> table = recipe_table(record).set_index("field")
    >>> table.loc["hidden_sizes", "value"], table.loc["test_masks", "part"], table.loc["patience", "part"]
    ('[500]', 'evaluation', 'training')
    """
    rows = [
        {"part": part, "field": f.name, "value": str(getattr(config, f.name)), "meaning": f.metadata.get("help", "")}
        for part, config in (("model", metrics.model_config), ("training", metrics.train_config))
        for f in fields(config)
    ]
    rows.append({"part": "evaluation", "field": "test_masks", "value": str(metrics.test_masks),
                 "meaning": "masks in the test ensemble (probabilities averaged)"})  # fmt: skip
    return pd.DataFrame(rows)


def duration(seconds: float) -> str:
    """Seconds under a minute, minutes under two hours, else hours.

    >>> duration(2.4), duration(90.0), duration(3 * 3600.0)
    ('2 s', '1.5 min', '3.0 h')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def stop_line(metrics: ExperimentRecord) -> str:
    """How training ended: epochs run, the best epoch, why it stopped (the look-ahead ran out, or the epoch cap cut it
    short), training time and device.

    >>> from replication.experiments import ROOT
    >>> from replication.training.config import TrainConfig
    >>> from replication.training.record import read_record
    >>> record = read_record(ROOT / "results" / "metrics" / "uci_dna_single.json", ExperimentRecord).replace(
    ...     epochs=40, best_epoch=10, train_seconds=90.0, device="cpu", machine="", train_config=TrainConfig(patience=30))
    >>> print(stop_line(record.replace(stopped_early=True)))  # doctest: +NORMALIZE_WHITESPACE
    40 epochs, best epoch 10 (its parameters kept); stopped early: 30 epochs (the look-ahead) without a better
    validation NLL; 1.5 min of training on cpu.
    >>> print(stop_line(record.replace(stopped_early=False)).split("; ")[1])
    stopped by the epoch cap (1000) before the look-ahead of 30 epochs ran out: not converged
    """
    train = metrics.train_config
    why = (
        f"stopped early: {train.patience} epochs (the look-ahead) without a better validation NLL"
        if metrics.stopped_early
        else f"stopped by the epoch cap ({train.max_epochs}) before the look-ahead of {train.patience} epochs ran out: "
        "not converged"
    )
    where = f"{metrics.device} ({metrics.machine})" if metrics.machine else metrics.device
    return (
        f"{metrics.epochs} epochs, best epoch {metrics.best_epoch} (its parameters kept); {why}; "
        f"{duration(metrics.train_seconds)} of training on {where}."
    )


def samples_caption(metrics: ExperimentRecord) -> str:
    """The sample grid's caption: its model, its test NLL and how the grid was drawn (a record that does not say was
    drawn as ``UNRECORDED_DRAW`` says), and when the samples are of one mask of an ensemble, that they are.

    >>> from replication.experiments import ROOT
    >>> from replication.training.record import read_record
    >>> record = read_record(ROOT / "results" / "metrics" / "mnist_1x500_4masks.json", ExperimentRecord)
    >>> print(samples_caption(record.replace(samples_drawn=None)).split(": ", 1)[1])  # doctest: +NORMALIZE_WHITESPACE
    100 samples from mask 0, generator torch.Generator().manual_seed(0). Drawn from one mask, not from the 4-mask
    ensemble its test NLL averages.
    """
    drawn = metrics.samples_drawn or UNRECORDED_DRAW
    k = metrics.test_masks
    ensemble = f", {k}-mask ensemble" if k > 1 else ""
    text = f"{metrics.name} (test NLL {plus_minus(metrics.test_nll.nats, metrics.test_nll.stderr)} nats{ensemble}): {drawn}."
    if k > 1 and metrics.samples_drawn is None:  # a recorded draw is of the masks the test NLL averages
        text += f" Drawn from one mask, not from the {k}-mask ensemble its test NLL averages."
    return text
