"""Negative log-likelihood of a data split, in nats, with its standard error."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial

import torch

from ..model.made import MADE, average_probabilities
from .structured import StructuredMADE


@dataclass(frozen=True)
class NLL:
    """Mean NLL in nats over ``n`` examples, its standard error (sd / sqrt(n); absent, ``None``, for one example),
    and bits/dim."""

    nats: float
    stderr: float | None
    bits_per_dim: float
    n: int
    n_masks: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{plus_minus(self.nats, self.stderr)} nats ({self.bits_per_dim:.4f} bits/dim, {self.n_masks} mask(s), n={self.n})"


def plus_minus(mean: float, stderr: float | None) -> str:
    """``mean ± stderr`` to two decimals, or the mean alone with "(one example: no standard error)".

    >>> plus_minus(88.4012, 0.0351), plus_minus(88.4, None)
    ('88.40 ± 0.04', '88.40 (one example: no standard error)')
    """
    return f"{mean:.2f} ± {stderr:.2f}" if stderr is not None else f"{mean:.2f} (one example: no standard error)"


def standard_error(values: torch.Tensor) -> float | None:
    """sd(ddof=1) / sqrt(n) of ``values``, or ``None`` for a single value (no spread to measure)."""
    n = values.numel()
    return float(values.double().std(unbiased=True)) / math.sqrt(n) if n > 1 else None


STRUCTURED_MIN_UNITS = 1000  # on CPU, from this width up the structured path is faster (see `make bench`)


def structured_pays(model: MADE) -> bool:
    """Whether evaluation takes the structure-aware path: on CPU, for a hidden layer at least
    ``STRUCTURED_MIN_UNITS`` wide (where ``make bench`` measured it faster; the dense path elsewhere)."""
    return model.output.weight.device.type == "cpu" and max(model.config.hidden_sizes) >= STRUCTURED_MIN_UNITS


@torch.no_grad()
def log_likelihoods(model: MADE, data: torch.Tensor, n_masks: int = 1, batch_size: int = 1000) -> torch.Tensor:
    """Per-example log-likelihoods (float64, on CPU) of the ensemble of ``n_masks`` masks (``MaskSet.ensemble``:
    masks ``0..n_masks-1`` in the cycled schedule; probabilities averaged), computed mask by mask in batches, model
    in eval mode."""
    was_training = model.training
    model.eval()
    device = model.output.weight.device
    structured = structured_pays(model)
    try:
        per_mask = []
        for k in model.mask_set.ensemble(n_masks):
            log_prob = StructuredMADE(model, k).log_prob if structured else partial(model.log_prob, mask=k)
            batches = [log_prob(data[i : i + batch_size].to(device)) for i in range(0, data.shape[0], batch_size)]
            per_mask.append(torch.cat(batches))
    finally:
        model.train(was_training)
    return average_probabilities(torch.stack(per_mask)).double().cpu()


def summarize(nll: torch.Tensor, dim: int, n_masks: int) -> NLL:
    """Mean, standard error and bits/dim of per-example NLLs (nats) of ``dim``-dimensional data."""
    mean = float(nll.mean())
    return NLL(mean, standard_error(nll), mean / (dim * math.log(2)), nll.numel(), n_masks)


def evaluate_nll(model: MADE, data: torch.Tensor, n_masks: int = 1, batch_size: int = 1000) -> NLL:
    """NLL of ``data`` under the model (an ensemble over ``n_masks`` masks when > 1).

    >>> from replication import MADE, MADEConfig
    >>> nll = evaluate_nll(MADE(MADEConfig(input_dim=3, hidden_sizes=[4], num_masks=2, order_agnostic=True)),
    ...                    torch.zeros(5, 3), n_masks=2)
    >>> nll.n, nll.n_masks, nll.nats > 0
    (5, 2, True)
    """
    return summarize(-log_likelihoods(model, data, n_masks, batch_size), data.shape[1], n_masks)
