"""MADE: a masked autoencoder whose outputs are autoregressive conditionals (Germain et al. 2015).

The whole forward pass is :meth:`MADE.forward`: masked hidden layers, then the output layer, plus
(optionally) direct input-to-output connections::

    h^0 = x,   h^l = act(b^l + (W^l * M^l) h^{l-1}),   logits = c + (V * M^V) h^L + (A * M^A) x

Output ``d`` is the logit of ``p(x_d = 1 | x_{<d})`` in the ordering of the current mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .masks import Degrees, Masks, degrees_for_mask, masks_from_degrees

DEGREE_CACHE_SIZE = 1024  # masks whose degrees are kept (they are tiny and cheap to redraw)
MASK_CACHE_BYTES = 512 * 2**20  # keep the whole K-mask set in memory when it fits in this budget
ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


@dataclass
class MADEConfig:
    """Everything needed to rebuild a MADE (saved in checkpoints)."""

    input_dim: int
    hidden_sizes: list[int] = field(default_factory=lambda: [500])
    direct: bool = True
    activation: str = "relu"
    num_masks: int = 1  # size of the mask set cycled over minibatches; 0 = a new mask every time
    order_agnostic: bool = False
    connectivity_agnostic: bool = False
    random_ordering: bool = False  # single-ordering models: natural (False) or one random ordering
    dropout: float = 0.0
    init: str = "default"  # "default" (nn.Linear's) or "orthogonal" (the official code's)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.input_dim < 2:
            raise ValueError(f"input_dim must be >= 2, got {self.input_dim}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.num_masks < 0:
            raise ValueError(f"num_masks must be >= 0 (0 = unbounded), got {self.num_masks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.init not in ("default", "orthogonal"):
            raise ValueError(f"init must be 'default' or 'orthogonal', got {self.init!r}")


class MADE(nn.Module):
    """Masked autoencoder for binary vectors, with a reproducible set of masks.

    Mask ``k`` is a pure function of ``(config.seed, k)``; the model holds one mask at a time
    (``mask_index``) and :meth:`next_mask` cycles through the set of ``num_masks`` masks.
    """

    def __init__(self, config: MADEConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.config = config if config is not None else MADEConfig(**kwargs)
        cfg = self.config
        sizes = [cfg.input_dim, *cfg.hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(cfg.hidden_sizes[-1], cfg.input_dim)
        self.direct = nn.Linear(cfg.input_dim, cfg.input_dim, bias=False) if cfg.direct else None
        self.activation = ACTIVATIONS[cfg.activation]
        self.dropout = nn.Dropout(cfg.dropout)
        self._init_weights()
        self._degrees: dict[int, Degrees] = {}
        self._mask_cache: dict[tuple, list[torch.Tensor]] = {}
        self.mask_index = 0
        self.set_mask(0)
        if self._fixed_mask:  # masked weights stay zero: zero gradients, zero optimizer state, zero updates
            for layer, name in self._masked_layers():
                layer.weight.register_post_accumulate_grad_hook(self._gradient_masker(name))

    # ------------------------------------------------------------------ masks
    def degrees(self, mask_index: int | None = None) -> Degrees:
        """Degrees of mask ``mask_index`` (default: the current one); cached, they are tiny."""
        k = self.mask_index if mask_index is None else self._canonical(mask_index)
        if k not in self._degrees:
            if len(self._degrees) >= DEGREE_CACHE_SIZE:  # unbounded mask sets draw a new mask every minibatch
                self._degrees.clear()
            cfg = self.config
            self._degrees[k] = degrees_for_mask(
                cfg.input_dim,
                cfg.hidden_sizes,
                cfg.seed,
                k,
                order_agnostic=cfg.order_agnostic,
                connectivity_agnostic=cfg.connectivity_agnostic,
                random_first_ordering=cfg.random_ordering,
            )
        return self._degrees[k]

    def masks(self, mask_index: int | None = None) -> Masks:
        """The masks of mask ``mask_index``, built on the model's device."""
        weight = self.output.weight
        return masks_from_degrees(self.degrees(mask_index), weight.dtype, weight.device)

    def set_mask(self, mask_index: int) -> None:
        """Make mask ``mask_index`` (taken modulo the set size) the current one."""
        self.mask_index = self._canonical(mask_index)
        layer_masks = self._layer_masks(self.mask_index)
        for (_, name), mask in zip(self._masked_layers(), layer_masks):
            self.register_buffer(name, mask, persistent=False)
        if self._fixed_mask:
            with torch.no_grad():
                for layer, name in self._masked_layers():
                    layer.weight.mul_(getattr(self, name))

    def _layer_masks(self, mask_index: int) -> list[torch.Tensor]:
        """One mask per masked layer (hidden..., output[, direct]); a K-mask set is cached if it is small."""
        weight = self.output.weight
        key = (mask_index, weight.dtype, weight.device)
        if key in self._mask_cache:
            return self._mask_cache[key]
        masks = self.masks(mask_index)
        layer_masks = [*masks.hidden, masks.output] + ([masks.direct] if self.config.direct else [])
        set_bytes = self.config.num_masks * sum(m.numel() * m.element_size() for m in layer_masks)
        if self.config.num_masks > 1 and set_bytes <= MASK_CACHE_BYTES:
            self._mask_cache = {k: v for k, v in self._mask_cache.items() if k[1:] == key[1:]}
            self._mask_cache[key] = layer_masks
        return layer_masks

    def _masked_layers(self) -> list[tuple[nn.Linear, str]]:
        """Each masked layer with the name of its current mask buffer."""
        layers = [*self.hidden, self.output] + ([self.direct] if self.direct is not None else [])
        names = [f"mask_hidden_{i}" for i in range(len(self.hidden))] + ["mask_output", "mask_direct"]
        return list(zip(layers, names))

    @property
    def _fixed_mask(self) -> bool:
        """A single-mask model keeps masked-out weights at exactly zero instead of masking every pass."""
        return self.config.num_masks == 1

    def _gradient_masker(self, name: str) -> Callable[[torch.Tensor], None]:
        def mask_gradient(weight: torch.Tensor) -> None:
            weight.grad.mul_(getattr(self, name))

        return mask_gradient

    def masked_weights(self) -> list[torch.Tensor]:
        """``W * M`` for each layer; a fixed-mask model's weights are already masked (see :meth:`set_mask`)."""
        return [layer.weight if self._fixed_mask else layer.weight * getattr(self, name) for layer, name in self._masked_layers()]

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

    # ------------------------------------------------------------ forward pass
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``p(x_d = 1 | x_{<d})`` for every ``d``, under the current mask."""
        weights = self.masked_weights()
        h = x
        for layer, weight in zip(self.hidden, weights):
            h = self.dropout(self.activation(F.linear(h, weight, layer.bias)))
        logits = F.linear(h, weights[len(self.hidden)], self.output.bias)
        if self.direct is not None:
            logits = torch.addmm(logits, x, weights[-1].t())  # no gradient w.r.t. x is needed or computed
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
        from .sampling import sample

        return sample(self, n, generator=generator)

    # ---------------------------------------------------------- bookkeeping
    def get_extra_state(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "mask_index": self.mask_index}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state["config"] != asdict(self.config):
            raise ValueError("checkpoint was saved from a MADE with a different configuration")
        self.set_mask(state["mask_index"])

    def _init_weights(self) -> None:
        """Init each weight block with its own fan-in (orthogonal if configured)."""
        cfg = self.config
        blocks = [layer.weight for layer, _ in self._masked_layers()]
        generator = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            for block in blocks:
                if cfg.init == "orthogonal":
                    block.copy_(nn.init.orthogonal_(torch.empty_like(block), generator=generator))
                else:
                    bound = 1.0 / math.sqrt(block.shape[1])
                    block.uniform_(-bound, bound, generator=generator)
            for bias in [layer.bias for layer in self.hidden] + [self.output.bias]:
                bias.zero_()
