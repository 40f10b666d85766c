"""The optimizers a recipe can name; the official code's Adagrad against its formula."""

from __future__ import annotations

import pytest
import torch

from replication.errors import ConfigError
from replication.model.made import MADE
from replication.training.config import TrainConfig
from replication.training.optimizers import OPTIMIZERS, OptimizerSpec, make_optimizer


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


def test_official_adagrad_resumes_from_its_first_forms_state():
    """A checkpoint of the first, unfused form (``sum`` = G, no ``step``, ``eps`` in the groups) loads and the steps go
    on by the official formula; a parameter that form never stepped starts from G = 0."""
    torch.manual_seed(1)
    params = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    expected = [p.detach().clone() for p in params]
    first_sum = torch.rand(4, 3, dtype=torch.float64)  # G of parameter 0; parameter 1 was never stepped
    old_state = {"state": {0: {"sum": first_sum.clone()}}, "param_groups": [{"lr": 0.03, "eps": 1e-6, "params": [0, 1]}]}
    optimizer = make_optimizer(params, "adagrad_official", lr=0.5, weight_decay=0.0)
    optimizer.load_state_dict(old_state)
    sums = [first_sum, torch.zeros(4, 3, dtype=torch.float64)]
    for _ in range(3):
        grads = [torch.randn(4, 3, dtype=torch.float64) for _ in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
        for i, g in enumerate(grads):
            sums[i] = sums[i] + g**2
            expected[i] = expected[i] - 0.03 * g / torch.sqrt(sums[i] + 1e-6)  # the saved lr, not the new one
    for p, e in zip(params, expected):
        assert torch.allclose(p.detach(), e, rtol=0, atol=1e-14)


def test_official_adagrad_takes_pytorchs_fused_kernel_on_cpu():
    optimizer = make_optimizer([torch.zeros(3, requires_grad=True)], "adagrad_official", lr=0.01, weight_decay=0.0)
    assert optimizer.param_groups[0]["fused"] is True


class FusedFailsAtStep(torch.optim.SGD):
    """An optimizer that, like some builds on some devices, accepts ``fused=True`` and fails at the first step."""

    def step(self, closure=None):
        if self.param_groups[0].get("fused"):
            raise NotImplementedError("no fused kernel for this device")
        return super().step(closure)


def test_an_optimizer_whose_fused_kernel_fails_at_its_first_step_falls_back_to_the_plain_one(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, "fused_fails", OptimizerSpec(FusedFailsAtStep, states=0, fused=True, weight_decay=True))
    param = torch.ones(3, requires_grad=True)
    optimizer = make_optimizer([param], "fused_fails", lr=0.5, weight_decay=0.0)
    assert not optimizer.param_groups[0]["fused"]
    param.grad = torch.ones(3)
    optimizer.step()  # the real parameters step without error
    assert torch.equal(param.detach(), torch.full((3,), 0.5))
