"""Exact completions: sample the unobserved inputs given the observed ones, ``x_u ~ p(x_u | x_o)``.

A MADE factorises ``p(x)`` along the ordering of a mask, so when that ordering puts every observed input first,
``p(x_u | x_o)`` is the product of the conditionals that follow them: ancestral sampling that starts from the
observed values is exact, and ``log p(x_u | x_o)`` is the sum of the unobserved inputs' log-conditionals. For any
other ordering the conditional is not available in closed form, and such a mask is refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .sampling import sample_fast, sample_naive


def observed_first(model: nn.Module, observed: torch.Tensor, mask: int = 0) -> int:
    """The number of observed inputs, after checking that mask ``mask`` models all of them before any other."""
    observed = torch.as_tensor(observed, dtype=torch.bool).cpu()
    if observed.shape != (model.config.input_dim,):
        raise ConfigError(f"observed must be a boolean vector of {model.config.input_dim} inputs, got {tuple(observed.shape)}")
    order, given = model.ordering(mask), int(observed.sum())
    late = order[:given][~observed[order[:given]]]
    if len(late):
        first_late = order[given:][observed[order[given:]]][0]
        raise ConfigError(
            f"mask {mask} models unobserved input {int(late[0])} before observed input {int(first_late)}; exact "
            "completion needs a mask whose ordering puts every observed input first (a raster-ordered model, say)"
        )
    return given


@torch.no_grad()
def complete(
    model: nn.Module,
    x: torch.Tensor,
    observed: torch.Tensor,
    mask: int = 0,
    generator: torch.Generator | None = None,
    naive: bool = False,
) -> torch.Tensor:
    """One exact draw of the unobserved inputs of each row of ``x`` given its observed ones (kept as they are).

    >>> from replication import MADE, MADEConfig
    >>> model = MADE(MADEConfig(input_dim=4, hidden_sizes=[8]))  # natural ordering: inputs 0 and 1 come first
    >>> x = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3)
    >>> drawn = complete(model, x, torch.tensor([True, True, False, False]), generator=torch.Generator().manual_seed(0))
    >>> drawn[:, :2].tolist()  # the observed inputs are kept; the others are drawn from p(x_2, x_3 | x_0, x_1)
    [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
    """
    given = observed_first(model, observed, mask)
    param = model.output.weight
    keep = torch.as_tensor(observed, dtype=param.dtype, device=param.device)
    start = x.to(param) * keep  # unobserved inputs at 0, as the samplers expect
    uniforms = torch.rand(x.shape[0], model.config.input_dim, generator=generator, dtype=param.dtype).to(param.device)
    return (sample_naive if naive else sample_fast)(model, uniforms, mask, start=start, given=given)


@torch.no_grad()
def conditional_log_prob(model: nn.Module, x: torch.Tensor, observed: torch.Tensor, mask: int = 0) -> torch.Tensor:
    """``log p(x_u | x_o)`` in nats for each row of ``x``: the unobserved inputs' log-conditionals, shape (batch,)."""
    observed_first(model, observed, mask)
    unobserved = ~torch.as_tensor(observed, dtype=torch.bool, device=x.device)
    per_input = -F.binary_cross_entropy_with_logits(model(x, mask), x, reduction="none")
    return per_input[:, unobserved].sum(dim=1)
