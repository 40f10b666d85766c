"""A linear layer whose weight is multiplied by a connectivity mask given with each call (MADE's building block)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}  # the hidden activations a recipe can name


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b`` for the mask ``M`` passed to :meth:`forward`.

    A layer built with :meth:`fix_mask` (a model that only ever uses one mask) has its masked-out weights set to
    zero once and their gradients zeroed after every backward pass, so they stay exactly zero (zero optimizer
    state, zero updates); it is then called without a mask and skips the multiplication.
    """

    def fix_mask(self, mask: torch.Tensor) -> None:
        """Zero the weights ``mask`` removes, for good: they and their gradients stay zero."""
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask of shape {tuple(mask.shape)} for a weight of shape {tuple(self.weight.shape)}")
        self.register_buffer("fixed_mask", mask.to(self.weight.dtype), persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.fixed_mask)
        self.weight.register_post_accumulate_grad_hook(self._mask_gradient)

    def _mask_gradient(self, weight: torch.Tensor) -> None:
        if self.fixed_mask is not None:  # None while the mask is set aside by code that keeps the zeros itself
            weight.grad.mul_(self.fixed_mask)

    def masked_weight(self, mask: torch.Tensor | None) -> torch.Tensor:
        """``W * M``; ``W`` itself for ``mask=None`` (a fixed-mask layer: its masked-out entries are already zero)."""
        return self.weight if mask is None else self.weight * mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.masked_weight(mask), self.bias)
