"""The optimizers a recipe can name, each with how many state tensors it keeps per parameter (one source of names).

``adagrad_official`` is the update rule of the paper's official code (mgermain/MADE, ``MADE/update_rules.py``):
``G += g^2;  p -= lr * g / sqrt(G + 1e-6)``, G starting at zero, no weight decay. PyTorch's Adagrad steps by
``lr * g / (sqrt(G) + 1e-10)`` instead, which moves a weight with a tiny gradient by about ``lr`` at its first step;
the official rule damps such steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch


class OfficialAdagrad(torch.optim.Adagrad):
    """Adagrad as the official MADE code steps: ``p -= lr * g / sqrt(G + eps)`` with ``G`` the sum of squared gradients.

    That is PyTorch's Adagrad with its accumulator started at ``eps`` and nothing added after the square root, so
    PyTorch's fused kernel runs it: one pass over each parameter instead of four tensor operations (on 1x8000's
    parameters, 6 ms a step against 19 ms on two idle AMD EPYC cores). Its state's ``sum`` is ``G + eps``.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 0.01, eps: float = 1e-6, fused: bool | None = None) -> None:
        super().__init__(params, lr=lr, eps=0.0, initial_accumulator_value=eps, fused=fused)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Also read the state of this class's first form (groups with ``eps``, ``sum`` = ``G`` and no ``step``):
        runs that began with it resume exactly."""
        groups = state_dict["param_groups"]
        if any("initial_accumulator_value" not in group for group in groups):
            params = [p for group in self.param_groups for p in group["params"]]
            old, state = state_dict["state"], {}
            for group in groups:
                for i in group["params"]:
                    total = old[i]["sum"] + group["eps"] if i in old else torch.full_like(params[i], group["eps"])
                    state[i] = {"step": torch.tensor(0.0), "sum": total}
            mine = {k: v for k, v in self.param_groups[0].items() if k != "params"}
            groups = [{**mine, "lr": g["lr"], "initial_accumulator_value": g["eps"], "params": g["params"]} for g in groups]
            state_dict = {"state": state, "param_groups": groups}
        super().load_state_dict(state_dict)


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build an optimizer, and the tensors of state it keeps per parameter tensor (for memory estimates)."""

    build: Callable[..., torch.optim.Optimizer]
    states: int
    fused: bool  # PyTorch has a fused kernel for it on some devices
    weight_decay: bool  # it takes an L2 penalty


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adagrad": OptimizerSpec(torch.optim.Adagrad, states=1, fused=True, weight_decay=True),
    "adagrad_official": OptimizerSpec(OfficialAdagrad, states=1, fused=True, weight_decay=False),
    "adam": OptimizerSpec(torch.optim.Adam, states=2, fused=True, weight_decay=True),
    "sgd": OptimizerSpec(torch.optim.SGD, states=0, fused=True, weight_decay=True),
}


@cache
def fused_kernel_runs(name: str, device: torch.device) -> bool:
    """Whether PyTorch's fused kernel of optimizer ``name`` steps on ``device``: tried once on a scratch tensor, since
    a build may accept ``fused=True`` and fail only at the first step (no kernel for that device)."""
    probe = torch.zeros(1, device=device, requires_grad=True)
    probe.grad = torch.ones(1, device=device)
    try:
        OPTIMIZERS[name].build([probe], fused=True, lr=0.01).step()
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return False
    return True


def make_optimizer(parameters: Iterable[torch.Tensor], name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """The named optimizer, with PyTorch's fused kernel where this device has one (same algorithm, ~30% faster)."""
    spec, parameters = OPTIMIZERS[name], list(parameters)
    kwargs = {"lr": lr, "weight_decay": weight_decay} if spec.weight_decay else {"lr": lr}
    fused = spec.fused and bool(parameters) and fused_kernel_runs(name, parameters[0].device)
    return spec.build(parameters, fused=True, **kwargs) if fused else spec.build(parameters, **kwargs)
