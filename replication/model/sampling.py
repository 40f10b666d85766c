"""Exact ancestral sampling from a MADE, in the ordering of a given mask.

Both samplers set ``x_d = [u_d < p(x_d = 1 | x_<d)]`` from the same uniforms ``u``, so they agree
sample for sample.  The naive one runs a full forward pass per dimension (O(D^2 H) per sample).
The fast one exploits that setting ``x_d`` changes the first layer's pre-activations by one column
of its weight matrix: it keeps them up to date incrementally (O(D H) per sample for one hidden
layer; deeper layers are recomputed) and only evaluates the one output it needs at each step.
Both can also continue from a partly set ``x``: the first ``given`` inputs of the ordering keep their values and
only the rest are drawn (exact conditional sampling; see :mod:`.conditional`).
A mask ensemble is sampled exactly too: each sample draws one of its masks uniformly, then is drawn under it.
Each function takes a ``MADE`` (not imported here: ``made`` imports this module).

The fast sampler is a second forward pass, for speed only: it must draw exactly what the naive one, built on
:meth:`MADE.forward`, draws from the same uniforms; ``tests/test_sampling.py`` checks it sample for sample on every
variant, and checks the naive one's frequencies against ``exp(log_prob)``.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def sample_naive(
    model: nn.Module, uniforms: torch.Tensor, mask: int = 0, start: torch.Tensor | None = None, given: int = 0
) -> torch.Tensor:
    """Reference sampler: one full forward pass per dimension (after the ``given`` first ones, kept from ``start``)."""
    was_training = model.training
    model.eval()
    x = torch.zeros_like(uniforms) if start is None else start.clone()
    for d in model.ordering(mask)[given:].tolist():
        probs = torch.sigmoid(model(x, mask)[:, d])
        x[:, d] = (uniforms[:, d] < probs).to(x.dtype)
    model.train(was_training)
    return x


@torch.no_grad()
def sample_fast(
    model: nn.Module, uniforms: torch.Tensor, mask: int = 0, start: torch.Tensor | None = None, given: int = 0
) -> torch.Tensor:
    """Same samples as :func:`sample_naive` for the same uniforms, with incremental first-layer updates."""
    layers, weights = model.masked_layers, model.masked_weights(mask)
    depth = len(model.hidden)
    first, first_weight, output_weight = layers[0], weights[0], weights[depth]
    deeper = [(layer.bias, weight.t()) for layer, weight in zip(layers[1:depth], weights[1:depth])]
    direct_weight = weights[-1] if model.direct is not None else None
    x = torch.zeros_like(uniforms) if start is None else start.clone()
    pre_activation = torch.addmm(first.bias, x, first_weight.t())  # the first layer at x (its bias at x = 0)
    for d in model.ordering(mask)[given:].tolist():
        h = model.activation(pre_activation)
        for bias, weight_t in deeper:
            h = model.activation(torch.addmm(bias, h, weight_t))
        logit = h @ output_weight[d] + model.output.bias[d]
        if direct_weight is not None:
            logit += x @ direct_weight[d]
        x_d = (uniforms[:, d] < torch.sigmoid(logit)).to(x.dtype)
        x[:, d] = x_d
        pre_activation.addr_(x_d, first_weight[:, d])
    return x


@torch.no_grad()
def sample(
    model: nn.Module, n: int, mask: int = 0, generator: torch.Generator | None = None, naive: bool = False
) -> torch.Tensor:
    """Draw ``n`` exact samples in {0,1}^D under mask ``mask``; uniforms are drawn first (on CPU), so results are
    seedable."""
    return sample_ensemble(model, n, [mask], generator, naive)


@torch.no_grad()
def sample_ensemble(
    model: nn.Module, n: int, masks: list[int] | range, generator: torch.Generator | None = None, naive: bool = False
) -> torch.Tensor:
    """``n`` exact samples of the ensemble of ``masks``, the mixture ``mean_k p_k``: after all the uniforms, each sample
    draws one of the masks uniformly (none drawn for one mask), then is drawn under it (one call per mask).

    >>> from replication.model.made import MADE
    >>> x = sample_ensemble(MADE(input_dim=6, num_masks=4, order_agnostic=True), 5, range(4), torch.Generator())
    >>> x.shape, set(x.unique().tolist()) <= {0.0, 1.0}
    (torch.Size([5, 6]), True)
    """
    sampler, param = sample_naive if naive else sample_fast, model.output.weight
    uniforms = torch.rand(n, model.config.input_dim, generator=generator, dtype=param.dtype).to(param.device)
    if len(masks) == 1:
        return sampler(model, uniforms, masks[0])
    choices = torch.randint(len(masks), (n,), generator=generator).to(param.device)
    x = torch.empty_like(uniforms)
    for i, mask in enumerate(masks):
        chosen = choices == i
        x[chosen] = sampler(model, uniforms[chosen], mask)
    return x
