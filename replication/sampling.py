"""Exact ancestral sampling from a MADE, in the ordering of its current mask."""

from __future__ import annotations

import torch

from .made import MADE


@torch.no_grad()
def sample_naive(model: MADE, uniforms: torch.Tensor) -> torch.Tensor:
    """Reference sampler: one full forward pass per dimension; ``x_d = [u_d < p(x_d=1|x_<d)]``."""
    was_training = model.training
    model.eval()
    x = torch.zeros_like(uniforms)
    for d in model.ordering.tolist():
        probs = torch.sigmoid(model(x)[:, d])
        x[:, d] = (uniforms[:, d] < probs).to(x.dtype)
    model.train(was_training)
    return x


@torch.no_grad()
def sample(model: MADE, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` exact samples in {0,1}^D (uniforms drawn first, so results are seedable)."""
    param = model.output.weight
    uniforms = torch.rand(n, model.config.input_dim, generator=generator, dtype=param.dtype)
    return sample_naive(model, uniforms.to(param.device))
