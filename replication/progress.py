"""Where unfinished runs stand, read from their run folders: epoch, best validation NLL, look-ahead left, time.

Long runs train across several processes, each resuming the last; ``python -m replication.replicate progress``
prints this for every pending experiment, so a user sees whether a run is training now, where it would resume, and
how far its early stopping is from ending it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .experiments import Experiment
from .files import lock_held
from .training.checkpoints import read_checkpoint
from .training.runs import CHECKPOINT, LOCK, METRICS


@dataclass(frozen=True)
class Standing:
    """One run folder's state. ``state``: not started, training (a process holds its lock), interrupted (a checkpoint
    and no process: rerunning resumes it) or trained (its record is written; rerunning only records it)."""

    experiment: str
    state: str
    epoch: int | None = None
    best_valid_nll: float | None = None
    best_epoch: int | None = None
    look_ahead_left: int | None = None
    max_epochs: int | None = None
    train_hours: float | None = None
    seconds_per_epoch: float | None = None
    checkpoint_minutes_ago: float | None = None


def standing(experiment: Experiment, runs: Path, profile: str) -> Standing:
    """The state of ``experiment``'s run folder under ``runs`` (the checkpoint is read, never changed)."""
    folder = experiment.run_dir(runs, profile)
    checkpoint = folder / CHECKPOINT
    if lock_held(folder / LOCK):
        state = "training"
    elif (folder / METRICS).is_file():
        state = "trained"
    else:
        state = "interrupted" if checkpoint.is_file() else "not started"
    if not checkpoint.is_file():
        return Standing(experiment.name, state)
    saved = read_checkpoint(checkpoint)
    epoch, best_epoch = saved["epoch"], saved["best"]["epoch"]
    patience = saved["train_config"]["patience"]
    return Standing(
        experiment=experiment.name, state=state, epoch=epoch, best_valid_nll=saved["best"]["valid_nll"],
        best_epoch=best_epoch, look_ahead_left=max(patience - (epoch - best_epoch), 0),
        max_epochs=saved["train_config"]["max_epochs"], train_hours=saved["seconds"] / 3600,
        seconds_per_epoch=saved["seconds"] / max(epoch, 1),
        checkpoint_minutes_ago=(time.time() - checkpoint.stat().st_mtime) / 60,
    )  # fmt: skip


def standing_table(rows: list[Standing]) -> pd.DataFrame:
    """One row per run, with the column names a reader expects (whole numbers stay whole where a run has none)."""
    columns = {"experiment": "experiment", "state": "state", "epoch": "epoch", "best_valid_nll": "best valid NLL",
               "best_epoch": "best epoch", "look_ahead_left": "look-ahead left", "max_epochs": "epoch cap",
               "train_hours": "train hours", "seconds_per_epoch": "s/epoch",
               "checkpoint_minutes_ago": "checkpoint (min ago)"}  # fmt: skip
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(columns)).rename(columns=columns)
    whole = ["epoch", "best epoch", "look-ahead left", "epoch cap"]
    return frame.astype({c: "Int64" for c in whole})
