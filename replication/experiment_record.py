"""The record of a finished experiment, ``results/metrics/NAME.json``: the run's record plus what the plan says of it
(its name, profile and identity, the paper's number it is set against, its sample grid, how that grid was drawn, and
its completion figure).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .training.record import RunRecord


@dataclass(frozen=True)
class PaperReference:
    """The paper's number a run is compared with: its key in ``experiments.toml``, its row label and its NLL."""

    key: str
    row: str
    nll: float


@dataclass(frozen=True)
class CompletionFigure:
    """Exact completions of test images (bottom half given the top half): the figure, relative to the results
    folder, and the conditional NLL of the true bottom halves over the ``n`` test images, with its standard error
    (absent for one image)."""

    figure: str
    nll: float
    stderr: float | None
    n: int


@dataclass(frozen=True)
class ExperimentRecord(RunRecord):
    """A finished experiment of the plan: its run's record, then the plan's fields (stored after them)."""

    name: str | None = None
    profile: str | None = None
    identity: dict[str, Any] | None = None
    architecture: str | None = None
    note: str | None = None
    paper: PaperReference | None = None
    split: str | None = None
    samples: str | None = None  # the sample grid, relative to the results folder (image data only)
    samples_drawn: str | None = None  # how the grid was drawn (absent: experiments.UNRECORDED_DRAW)
    completions: CompletionFigure | None = None  # for image data and a mask whose ordering puts the top half first

    @classmethod
    def of(cls, run: RunRecord, **plan: Any) -> ExperimentRecord:
        """The experiment record of a run's record and the plan's fields."""
        return cls(**{f.name: getattr(run, f.name) for f in fields(RunRecord)}, **plan)
