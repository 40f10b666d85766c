"""MADE: a masked autoencoder whose outputs are autoregressive conditionals (Germain et al. 2015).

The whole forward pass is :meth:`MADE.forward`: masked hidden layers, then the output layer, plus
(optionally) direct input-to-output connections::

    h^0 = x,   h^l = act(b^l + (W^l * M^l) h^{l-1}),   logits = c + (V * M^V) h^L + (A * M^A) x

Output ``d`` is the logit of ``p(x_d = 1 | x_{<d})`` in the ordering of the mask named in the call: the model
holds no "current" mask; its :class:`~replication.model.masks.MaskSet` turns a mask index into masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import MADEConfig
from .layers import ACTIVATIONS, MaskedLinear
from .masks import Degrees, Masks, MaskSet
from .sampling import sample

__all__ = ["MADE", "MADEConfig"]


def average_probabilities(log_probs: torch.Tensor) -> torch.Tensor:
    """``log mean_k exp(log_probs[k])``: the log-likelihood of an ensemble from its masks' log-likelihoods (stacked
    on the first axis). Probabilities are averaged, never logits: the one ensemble of the library.

    >>> average_probabilities(torch.tensor([[0.0], [-math.inf]])).exp()  # p = 1 and p = 0 average to 1/2
    tensor([0.5000])
    """
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


class MADE(nn.Module):
    """Masked autoencoder for binary vectors, with a reproducible set of masks (``mask_set``).

    >>> import itertools
    >>> model = MADE(MADEConfig(input_dim=4, hidden_sizes=[8], num_masks=2, order_agnostic=True)).double()
    >>> x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)  # all 16 vectors
    >>> [round(model.log_prob(x, mask=k).exp().sum().item(), 12) for k in (0, 1)]  # each mask: a distribution
    [1.0, 1.0]
    >>> round(model.ensemble_log_prob(x, 2).exp().sum().item(), 12)  # and their mixture
    1.0
    >>> model.sample(3, mask=1).shape
    torch.Size([3, 4])
    """

    def __init__(self, config: MADEConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else MADEConfig(**kwargs)
        sizes = [cfg.input_dim, *cfg.hidden_sizes]
        self.hidden = nn.ModuleList(MaskedLinear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.output = MaskedLinear(sizes[-1], cfg.input_dim)
        self.direct = MaskedLinear(cfg.input_dim, cfg.input_dim, bias=False) if cfg.direct else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.dropout = nn.Dropout(cfg.dropout)
        self.mask_set = MaskSet(
            cfg.input_dim, cfg.hidden_sizes, cfg.seed, cfg.num_masks, order_agnostic=cfg.order_agnostic,
            connectivity_agnostic=cfg.connectivity_agnostic, random_ordering=cfg.random_ordering,
            schedule=cfg.mask_schedule,
        )  # fmt: skip
        self._init_weights()
        if self.single_mask:
            for layer, mask in zip(self.masked_layers, self.mask_set.masks(0).all):
                layer.fix_mask(mask)

    # ------------------------------------------------------------ forward pass
    def forward(self, x: torch.Tensor, mask: int = 0) -> torch.Tensor:
        """Logits of ``p(x_d = 1 | x_{<d})`` for every ``d``, under mask ``mask`` of the set."""
        masks = self.layer_masks(mask)
        h = x
        for layer, m in zip(self.hidden, masks):
            h = self.dropout(self.activation(layer(h, m)))
        logits = self.output(h, masks[len(self.hidden)])
        if self.direct is not None:
            logits = logits + self.direct(x, masks[-1])
        return logits

    def log_prob(self, x: torch.Tensor, mask: int = 0) -> torch.Tensor:
        """Per-example log-likelihood in nats under mask ``mask``, shape (batch,)."""
        return -F.binary_cross_entropy_with_logits(self(x, mask), x, reduction="none").sum(dim=1)

    def ensemble_log_prob(self, x: torch.Tensor, masks: int | Sequence[int]) -> torch.Tensor:
        """``log mean_k p_k(x)`` over the ensemble of ``masks`` masks of the schedule (or the listed ones):
        probabilities are averaged, never logits."""
        indices = self.mask_set.ensemble(masks) if isinstance(masks, int) else masks
        if len(indices) < 1:
            raise ValueError(f"an ensemble needs at least one mask, got {masks!r}")
        return average_probabilities(torch.stack([self.log_prob(x, k) for k in indices]))

    @torch.no_grad()
    def sample(self, n: int, mask: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples in {0,1}^D under mask ``mask`` (ancestral, in its ordering)."""
        return sample(self, n, mask, generator=generator)

    # ------------------------------------------------------------------ masks
    @property
    def single_mask(self) -> bool:
        """A single-mask model: its masked-out weights are zero for good and no mask is applied per call."""
        return self.config.single_mask

    @property
    def masked_layers(self) -> list[MaskedLinear]:
        """The layers in mask order: hidden ones, output, then direct (when present)."""
        return [*self.hidden, self.output] + ([self.direct] if self.direct is not None else [])

    def layer_masks(self, mask: int) -> list[torch.Tensor | None]:
        """The mask of each masked layer for mask ``mask`` (``None`` everywhere for a fixed-mask model)."""
        if self.single_mask:
            return [None] * len(self.masked_layers)
        weight = self.output.weight
        return list(self.mask_set.masks(mask, weight.dtype, weight.device).all)[: len(self.masked_layers)]

    def masked_weights(self, mask: int) -> list[torch.Tensor]:
        """``W * M`` of every masked layer (in :attr:`masked_layers` order) under mask ``mask``."""
        return [layer.masked_weight(m) for layer, m in zip(self.masked_layers, self.layer_masks(mask))]

    def degrees(self, mask: int = 0) -> Degrees:
        return self.mask_set.degrees(mask)

    def masks(self, mask: int = 0) -> Masks:
        """The masks of mask ``mask`` on the model's device."""
        weight = self.output.weight
        return self.mask_set.masks(mask, weight.dtype, weight.device)

    def ordering(self, mask: int = 0) -> torch.Tensor:
        """Input indices in the order mask ``mask`` models them."""
        return self.mask_set.ordering(mask)

    def _init_weights(self) -> None:
        """Init each weight block with its own fan-in (orthogonal if configured); biases at zero."""
        cfg = self.config
        generator = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            for layer in self.masked_layers:
                block = layer.weight
                if cfg.init == "orthogonal":
                    block.copy_(nn.init.orthogonal_(torch.empty_like(block), generator=generator))
                else:
                    bound = 1.0 / math.sqrt(block.shape[1])
                    block.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()
