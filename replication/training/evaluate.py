"""Negative log-likelihood of a data split, in nats, with its standard error."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..model.made import MADE


@dataclass(frozen=True)
class NLL:
    """Mean NLL in nats over ``n`` examples, its standard error (std / sqrt(n)), and bits/dim."""

    nats: float
    stderr: float
    bits_per_dim: float
    n: int
    n_masks: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.nats:.2f} ± {self.stderr:.2f} nats ({self.bits_per_dim:.4f} bits/dim, {self.n_masks} mask(s), n={self.n})"


@torch.no_grad()
def log_likelihoods(model: MADE, data: torch.Tensor, n_masks: int = 1, batch_size: int = 1000) -> torch.Tensor:
    """Per-example log-likelihoods (float64, on CPU), computed in batches, model in eval mode."""
    was_training = model.training
    model.eval()
    device = model.output.weight.device
    try:
        chunks = [
            model.ensemble_log_prob(data[i : i + batch_size].to(device), n_masks).double().cpu()
            for i in range(0, data.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def summarize(nll: torch.Tensor, dim: int, n_masks: int) -> NLL:
    """Mean, standard error and bits/dim of per-example NLLs (nats) of ``dim``-dimensional data."""
    n = nll.numel()
    stderr = float(nll.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    mean = float(nll.mean())
    return NLL(mean, stderr, mean / (dim * math.log(2)), n, n_masks)


def evaluate_nll(model: MADE, data: torch.Tensor, n_masks: int = 1, batch_size: int = 1000) -> NLL:
    """NLL of ``data`` under the model (an ensemble over ``n_masks`` masks when > 1)."""
    return summarize(-log_likelihoods(model, data, n_masks, batch_size), data.shape[1], n_masks)
