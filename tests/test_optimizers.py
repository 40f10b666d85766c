"""The optimizers a recipe can name; the official code's Adagrad against its formula."""

from __future__ import annotations

import pytest
import torch

from replication.errors import ConfigError
from replication.model.made import MADE
from replication.training.config import TrainConfig
from replication.training.optimizers import OPTIMIZERS, make_optimizer


def test_official_adagrad_steps_by_the_official_formula():
    """p -= lr * g / sqrt(G + 1e-6), G the running sum of squared gradients from zero (mgermain/MADE update_rules.py)."""
    torch.manual_seed(0)
    model = MADE(input_dim=6, hidden_sizes=[9], num_masks=3, order_agnostic=True, connectivity_agnostic=True).double()
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    sums = {name: torch.zeros_like(p) for name, p in params.items()}
    optimizer = make_optimizer(model.parameters(), "adagrad_official", lr=0.05, weight_decay=0.0)
    for step in range(5):
        x = (torch.rand(8, 6, dtype=torch.float64) < 0.5).double()
        loss = -model.log_prob(x, step).mean()
        optimizer.zero_grad()
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
        optimizer.step()
        for name in params:
            sums[name] = sums[name] + grads[name] ** 2
            params[name] = params[name] - 0.05 * grads[name] / torch.sqrt(sums[name] + 1e-6)
            assert torch.allclose(dict(model.named_parameters())[name], params[name], rtol=0, atol=1e-14), (step, name)


def test_official_adagrad_is_not_pytorchs():
    """The two rules differ on a first step with a small gradient: PyTorch moves by about lr, the official rule less."""
    p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    official = make_optimizer([p], "adagrad_official", lr=0.01, weight_decay=0.0)
    pytorch = make_optimizer([q], "adagrad", lr=0.01, weight_decay=0.0)
    for param, opt in ((p, official), (q, pytorch)):
        param.grad = torch.full((1,), 1e-3)
        opt.step()
    assert q.item() == pytest.approx(-0.01, rel=1e-6)
    assert p.item() == pytest.approx(-0.01 * 1e-3 / (1e-6 + 1e-6) ** 0.5, rel=1e-6)  # about -0.0071


def test_every_optimizer_builds_and_the_official_rule_takes_no_weight_decay():
    model = MADE(input_dim=4, hidden_sizes=[5])
    for name in OPTIMIZERS:
        assert isinstance(make_optimizer(model.parameters(), name, lr=0.01, weight_decay=0.0), torch.optim.Optimizer)
        assert name in TrainConfig.__dataclass_fields__["optimizer"].metadata["choices"]
    with pytest.raises(ConfigError, match="weight_decay"):
        TrainConfig(optimizer="adagrad_official", weight_decay=0.01)
