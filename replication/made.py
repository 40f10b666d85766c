"""MADE: a masked autoencoder whose outputs are autoregressive conditionals (Germain et al. 2015).

The whole forward pass is :meth:`MADE.forward`: masked hidden layers, then the output layer, plus
(optionally) direct input-to-output connections::

    h^0 = x,   h^l = act(b^l + (W^l * M^l) h^{l-1}),   logits = c + (V * M^V) h^L + (A * M^A) x

Output ``d`` is the logit of ``p(x_d = 1 | x_{<d})`` in the ordering of the current mask.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import MADEConfig
from .layers import MaskedLinear
from .masks import Degrees, Masks, degrees_for_mask, masks_from_degrees
from .sampling import sample

MASK_CACHE_BYTES = 512 * 2**20  # keep the whole K-mask set in memory when it fits in this budget
ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}

__all__ = ["MADE", "MADEConfig"]


def mask_cache_budget(device: torch.device) -> int:
    """Bytes a K-mask set may take to stay resident: 512 MiB on CPU, a quarter of the GPU's memory on CUDA (the
    paper's 2x8000 set of 32 masks takes 9.8 GB in float32 and is then built once, not every minibatch)."""
    if device.type == "cuda":
        return max(MASK_CACHE_BYTES, torch.cuda.get_device_properties(device).total_memory // 4)
    return MASK_CACHE_BYTES


class MADE(nn.Module):
    """Masked autoencoder for binary vectors, with a reproducible set of masks.

    Mask ``k`` is a pure function of ``(config.seed, k)``; the model holds one mask at a time
    (``mask_index``) and :meth:`next_mask` cycles through the set of ``num_masks`` masks.
    """

    def __init__(self, config: MADEConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.config = config if config is not None else MADEConfig(**kwargs)
        cfg, fixed = self.config, self.config.num_masks == 1
        sizes = [cfg.input_dim, *cfg.hidden_sizes]
        self.hidden = nn.ModuleList(MaskedLinear(i, o, fixed_mask=fixed) for i, o in zip(sizes[:-1], sizes[1:]))
        self.output = MaskedLinear(sizes[-1], cfg.input_dim, fixed_mask=fixed)
        self.direct = MaskedLinear(cfg.input_dim, cfg.input_dim, bias=False, fixed_mask=fixed) if cfg.direct else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.dropout = nn.Dropout(cfg.dropout)
        self._init_weights()
        self._mask_cache: dict[tuple, Masks] = {}
        self.mask_index = 0
        self.set_mask(0)

    # ------------------------------------------------------------ forward pass
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``p(x_d = 1 | x_{<d})`` for every ``d``, under the current mask."""
        h = x
        for layer in self.hidden:
            h = self.dropout(self.activation(layer(h)))
        logits = self.output(h)
        if self.direct is not None:
            logits = logits + self.direct(x)
        return logits

    def log_prob(self, x: torch.Tensor, n_masks: int = 1) -> torch.Tensor:
        """Per-example log-likelihood in nats, shape (batch,).

        With ``n_masks == 1`` the current mask is used.  Otherwise the ensemble of masks
        ``0..n_masks-1`` (modulo the set size): ``log mean_k p_k(x)``, i.e. probabilities are
        averaged, never logits.  The current mask is restored afterwards.
        """
        if n_masks == 1:
            return -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)
        if n_masks < 1:
            raise ValueError(f"n_masks must be >= 1, got {n_masks}")
        current = self.mask_index
        try:
            per_mask = []
            for k in range(n_masks):
                self.set_mask(k)
                per_mask.append(self.log_prob(x))
        finally:
            self.set_mask(current)
        return torch.logsumexp(torch.stack(per_mask), dim=0) - math.log(n_masks)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples in {0,1}^D under the current mask (ancestral, in its ordering)."""
        return sample(self, n, generator=generator)

    # ------------------------------------------------------------------ masks
    @property
    def masked_layers(self) -> list[MaskedLinear]:
        """The layers in mask order: hidden ones, output, then direct (when present)."""
        return [*self.hidden, self.output] + ([self.direct] if self.direct is not None else [])

    def degrees(self, mask_index: int | None = None) -> Degrees:
        """Degrees of mask ``mask_index`` (default: the current one)."""
        cfg = self.config
        k = self.mask_index if mask_index is None else self._canonical(mask_index)
        return degrees_for_mask(
            cfg.input_dim, cfg.hidden_sizes, cfg.seed, k, order_agnostic=cfg.order_agnostic,
            connectivity_agnostic=cfg.connectivity_agnostic, random_first_ordering=cfg.random_ordering,
        )  # fmt: skip

    def masks(self, mask_index: int | None = None) -> Masks:
        """The masks of mask ``mask_index`` on the model's device; a K-mask set is cached when it is small."""
        weight = self.output.weight
        k = self.mask_index if mask_index is None else self._canonical(mask_index)
        key = (k, weight.dtype, weight.device)
        if key in self._mask_cache:
            return self._mask_cache[key]
        masks = masks_from_degrees(self.degrees(k), weight.dtype, weight.device)
        per_mask = sum(layer.weight.numel() for layer in self.masked_layers) * weight.element_size()
        if self.config.num_masks > 1 and self.config.num_masks * per_mask <= mask_cache_budget(weight.device):
            self._mask_cache = {c: m for c, m in self._mask_cache.items() if c[1:] == key[1:]}
            self._mask_cache[key] = masks
        return masks

    def set_mask(self, mask_index: int) -> None:
        """Make mask ``mask_index`` (taken modulo the set size) the current one."""
        self.mask_index = self._canonical(mask_index)
        masks = self.masks(self.mask_index)
        for layer, mask in zip(self.masked_layers, [*masks.hidden, masks.output, masks.direct]):
            layer.set_mask(mask)

    def next_mask(self) -> None:
        """Advance to the next mask of the set (a no-op for a single-mask model)."""
        if self.config.num_masks != 1:
            self.set_mask(self.mask_index + 1)

    @property
    def ordering(self) -> torch.Tensor:
        """Input indices in the order the current mask models them."""
        return torch.as_tensor(self.degrees().ordering)

    def _canonical(self, mask_index: int) -> int:
        k = self.config.num_masks
        return mask_index % k if k > 0 else mask_index

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
