"""A linear layer that owns its connectivity mask (the building block of MADE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b``: a linear layer whose weight ``W`` is multiplied by a binary mask ``M``.

    With ``fixed_mask`` (a model that only ever uses one mask) the masked-out weights are set to zero once
    in :meth:`set_mask` and their gradients are zeroed after every backward pass, so they stay exactly zero
    (zero optimizer state, zero updates) and the forward pass skips the multiplication by ``M``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, fixed_mask: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.fixed_mask = fixed_mask
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)
        if fixed_mask:
            self.weight.register_post_accumulate_grad_hook(self._mask_gradient)

    def _mask_gradient(self, weight: torch.Tensor) -> None:
        weight.grad.mul_(self.mask)

    def set_mask(self, mask: torch.Tensor) -> None:
        """Use ``mask`` (shaped like the weight) from now on."""
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask of shape {tuple(mask.shape)} for a weight of shape {tuple(self.weight.shape)}")
        self.mask = mask.to(device=self.weight.device, dtype=self.weight.dtype)
        if self.fixed_mask:
            with torch.no_grad():
                self.weight.mul_(self.mask)

    @property
    def masked_weight(self) -> torch.Tensor:
        """``W * M`` (for a fixed mask, ``W`` itself: its masked-out entries are already zero)."""
        return self.weight if self.fixed_mask else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight, self.bias)
