"""The optimizers a recipe can name, each with how many state tensors it keeps per parameter (one source of names).

``adagrad_official`` is the update rule of the paper's official code (mgermain/MADE, ``MADE/update_rules.py``):
``G += g^2;  p -= lr * g / sqrt(G + 1e-6)``, G starting at zero, no weight decay. PyTorch's Adagrad steps by
``lr * g / (sqrt(G) + 1e-10)`` instead, which moves a weight with a tiny gradient by about ``lr`` at its first step;
the official rule damps such steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


class OfficialAdagrad(torch.optim.Optimizer):
    """Adagrad as the official MADE code steps: ``p -= lr * g / sqrt(G + eps)`` with ``G`` the sum of squared gradients."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 0.01, eps: float = 1e-6) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                total = self.state[p].setdefault("sum", torch.zeros_like(p))
                total.addcmul_(p.grad, p.grad)  # G += g^2
                p.addcdiv_(p.grad, (total + group["eps"]).sqrt_(), value=-group["lr"])  # p -= lr * g / sqrt(G + eps)
        return loss


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build an optimizer, and the tensors of state it keeps per parameter tensor (for memory estimates)."""

    build: Callable[..., torch.optim.Optimizer]
    states: int
    fused: bool  # PyTorch has a fused kernel for it on some devices
    weight_decay: bool  # it takes an L2 penalty


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adagrad": OptimizerSpec(torch.optim.Adagrad, states=1, fused=True, weight_decay=True),
    "adagrad_official": OptimizerSpec(OfficialAdagrad, states=1, fused=False, weight_decay=False),
    "adam": OptimizerSpec(torch.optim.Adam, states=2, fused=True, weight_decay=True),
    "sgd": OptimizerSpec(torch.optim.SGD, states=0, fused=True, weight_decay=True),
}


def make_optimizer(parameters: Iterable[torch.Tensor], name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The named optimizer, with PyTorch's fused kernel where this device has one (same algorithm, ~30% faster)."""
    spec, parameters = OPTIMIZERS[name], list(parameters)
    kwargs = {"lr": lr, "weight_decay": weight_decay} if spec.weight_decay else {"lr": lr}
    if spec.fused:
        try:
            return spec.build(parameters, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # no fused kernel for this optimizer on this device
            pass
    return spec.build(parameters, **kwargs)
