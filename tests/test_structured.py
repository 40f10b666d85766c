"""The structure-aware evaluation path gives the dense path's log-likelihoods with about half the work."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import VARIANTS, make_model, masks_to_check
from replication.model.made import MADE, MADEConfig
from replication.training import evaluate
from replication.training.evaluate import evaluate_nll, structured_pays
from replication.training.structured import BLOCKS, StructuredMADE


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("dim", [5, 23])
def test_structured_log_prob_equals_the_dense_one_for_every_mask(name, dim):
    model = make_model(dim, dtype=torch.float32, **dict(VARIANTS[name]))
    x = (torch.rand(300, dim, generator=torch.Generator().manual_seed(dim)) < 0.4).float()
    for k in masks_to_check(model):
        dense, structured = model.log_prob(x, k), StructuredMADE(model, k).log_prob(x)
        error = float((structured - dense).detach().abs().max())
        assert error < 2e-5, (name, k, error)  # float32 sums in another order; measured at most 5.7e-6


@pytest.mark.parametrize("seed", range(4))
def test_random_shapes_and_depths(seed):
    gen = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(3, 60, (1,), generator=gen))
    hidden = [int(h) for h in torch.randint(1, 90, (int(torch.randint(1, 4, (1,), generator=gen)),), generator=gen)]
    model = make_model(dim, seed=seed, dtype=torch.float64, hidden_sizes=hidden, num_masks=3, order_agnostic=True,
                       connectivity_agnostic=True, direct=bool(seed % 2))  # fmt: skip
    x = (torch.rand(50, dim, generator=gen, dtype=torch.float64) < 0.5).double()
    for k in range(3):
        assert torch.allclose(StructuredMADE(model, k).log_prob(x), model.log_prob(x, k), rtol=0, atol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_every_activation_gives_the_dense_log_prob(activation):
    """Evaluation applies the activation in place; each one must still be the model's."""
    model = make_model(13, dtype=torch.float64, hidden_sizes=[25, 17], num_masks=2, order_agnostic=True, activation=activation)
    x = (torch.rand(40, 13, generator=torch.Generator().manual_seed(1), dtype=torch.float64) < 0.5).double()
    for k in range(2):
        assert torch.allclose(StructuredMADE(model, k).log_prob(x), model.log_prob(x, k), rtol=0, atol=1e-10)


def test_the_structured_path_does_about_half_the_multiply_adds():
    model = MADE(MADEConfig(input_dim=784, hidden_sizes=[1000, 1000], num_masks=2, order_agnostic=True))
    dense = sum(w.numel() for w in model.masked_weights(1))
    assert 0.49 < StructuredMADE(model, 1).multiply_adds / dense < 0.5 + 1 / (2 * BLOCKS) + 0.005  # the band's share


def test_evaluation_takes_the_structured_path_where_it_pays_and_gives_the_same_nll(monkeypatch):
    model = make_model(30, dtype=torch.float32, hidden_sizes=[40], num_masks=4, order_agnostic=True)
    x = (torch.rand(500, 30, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    assert not structured_pays(model)
    dense = evaluate_nll(model, x, n_masks=4)
    monkeypatch.setattr(evaluate, "STRUCTURED_MIN_UNITS", 40)
    assert structured_pays(model)
    built = []
    monkeypatch.setattr(evaluate, "StructuredMADE", lambda m, k: built.append(k) or StructuredMADE(m, k))
    structured = evaluate_nll(model, x, n_masks=4, batch_size=100)
    assert built == [0, 1, 2, 3]  # built once per mask, not per batch
    assert structured.nats == pytest.approx(dense.nats, rel=1e-8)  # measured 2.1e-9
    assert structured.stderr == pytest.approx(dense.stderr, rel=1e-7)  # measured 1.2e-8


def test_the_dense_path_gives_the_per_batch_ensemble():
    """Evaluating mask by mask (so that a structured layout is built once per mask) gives the ensemble of the masks'
    probabilities batch by batch, to float32 rounding (the reduction over masks runs on longer rows)."""
    model = make_model(30, dtype=torch.float32, hidden_sizes=[40], num_masks=5, order_agnostic=True)
    x = (torch.rand(2500, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        per_batch = torch.cat([model.ensemble_log_prob(x[i : i + 1000], 5).double() for i in range(0, 2500, 1000)])
    mask_by_mask = evaluate.log_likelihoods(model, x, 5)
    assert torch.allclose(mask_by_mask, per_batch, rtol=1e-6, atol=0)
    assert not torch.allclose(evaluate.log_likelihoods(model, x, 4), per_batch, rtol=1e-6, atol=0)  # 4 masks differ


# ---------------------------------------------------------------------------------------------- training path
def train_both_paths(model_a: MADE, model_b: MADE, optimizer: str, x: torch.Tensor, steps: int = 5):
    """``steps`` optimizer steps of each model on ``x``, cycling masks: ``model_a`` dense, ``model_b`` structured."""
    from replication.training.optimizers import make_optimizer
    from replication.training.structured import structured_training

    opt_a = make_optimizer(model_a.parameters(), optimizer, 0.01, 0.0)
    opt_b = make_optimizer(model_b.parameters(), optimizer, 0.01, 0.0)
    path = structured_training(model_b, opt_b)
    for k in range(1, steps + 1):
        loss = -model_a.log_prob(x, k).mean()
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_a.step()
        with path as log_prob:
            loss = -log_prob(x, k).mean()
            opt_b.zero_grad(set_to_none=True)
            loss.backward()
            opt_b.step()
    return opt_a, opt_b


@pytest.mark.parametrize("optimizer", ["adagrad", "adagrad_official", "adam", "sgd"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_structured_training_steps_equal_the_dense_ones(name, optimizer):
    """Parameters and optimizer state after five steps on the structured path (sorted parameters for one mask,
    per-step gathers for K masks) equal the dense path's in float64, for every mask kind and depth."""
    variant = dict(VARIANTS[name])
    a, b = (make_model(11, dtype=torch.float64, **variant) for _ in range(2))
    x = (torch.rand(40, 11, generator=torch.Generator().manual_seed(5), dtype=torch.float64) < 0.4).double()
    opt_a, opt_b = train_both_paths(a, b, optimizer, x)
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), make_model(11, **variant).parameters()))
    assert moved > 1e-3  # the steps did something
    for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, rtol=0, atol=1e-12), (key, float((p - q).abs().max()))
    for i, state in opt_a.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.allclose(value, opt_b.state_dict()["state"][i][key], rtol=0, atol=1e-12), (i, key)


@pytest.mark.parametrize("seed", range(3))
def test_structured_gradients_equal_the_dense_ones_for_random_shapes(seed):
    from replication.training.structured import GatheredTraining

    gen = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(3, 50, (1,), generator=gen))
    hidden = [int(h) for h in torch.randint(1, 70, (int(torch.randint(1, 4, (1,), generator=gen)),), generator=gen)]
    model = make_model(dim, seed=seed, hidden_sizes=hidden, num_masks=3, order_agnostic=True, connectivity_agnostic=True,
                       direct=bool(seed % 2))  # fmt: skip
    x = (torch.rand(30, dim, generator=gen, dtype=torch.float64) < 0.5).double()
    for k in range(3):
        dense = torch.autograd.grad(model.log_prob(x, k).sum(), list(model.parameters()))
        with GatheredTraining(model) as log_prob:
            structured = torch.autograd.grad(log_prob(x, k).sum(), list(model.parameters()))
        for g, h in zip(dense, structured):
            assert torch.allclose(g, h, rtol=0, atol=1e-10)


def test_sorted_training_leaves_the_model_layout_and_its_masks():
    """Outside the context the parameters are in the model's layout: masked-out weights exactly zero, the fixed masks
    back in place, the autoregressive property intact (the output for input d does not move with inputs d..D)."""
    from replication.training.optimizers import make_optimizer
    from replication.training.structured import SortedTraining

    model = make_model(9, dtype=torch.float32, hidden_sizes=[30, 20], num_masks=1, random_ordering=True)
    masks = [layer.fixed_mask.clone() for layer in model.masked_layers]
    optimizer = make_optimizer(model.parameters(), "adagrad", 0.05, 0.0)
    x = (torch.rand(64, 9, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with SortedTraining(model, optimizer) as log_prob:
        assert all(layer.fixed_mask is None for layer in model.masked_layers)
        for _ in range(5):
            optimizer.zero_grad()
            (-log_prob(x).mean()).backward()
            optimizer.step()
    with pytest.raises(RuntimeError, match="inside its context"):
        log_prob(x)  # the parameters are back in the model's layout
    for layer, mask in zip(model.masked_layers, masks):
        assert torch.equal(layer.fixed_mask, mask)
        assert torch.all(layer.weight[mask == 0] == 0) and torch.any(layer.weight[mask == 1] != 0)
    order = model.ordering(0)
    base = model(x)
    for i, d in enumerate(order.tolist()):
        moved = x.clone()
        moved[:, order[i:]] = 1 - moved[:, order[i:]]  # flip input d and every later one
        assert torch.equal(model(moved)[:, d], base[:, d])
    with pytest.raises(ValueError, match="one-mask"):
        SortedTraining(make_model(9, num_masks=2, order_agnostic=True), optimizer)


def test_sorted_training_reuses_one_gradient_buffer_per_weight_and_accumulates_like_autograd():
    """Inside one stretch each weight's gradient is the same buffer step after step (its zeros off the tiles are
    written once); a second backward before ``zero_grad`` accumulates into it; after the stretch the gradients are
    back in the model's layout. Parameters and gradients equal the dense path's in float64."""
    from replication.training.optimizers import make_optimizer
    from replication.training.structured import SortedTraining

    a, b = (make_model(11, dtype=torch.float64, hidden_sizes=[30, 20], num_masks=1, random_ordering=True) for _ in range(2))
    opt_a, opt_b = (make_optimizer(m.parameters(), "adagrad", 0.05, 0.0) for m in (a, b))
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.rand(32, 11, generator=gen, dtype=torch.float64) < 0.4).double() for _ in range(8)]
    training = SortedTraining(b, opt_b)
    with training as log_prob:
        for first, second in zip(batches[::2], batches[1::2]):
            for optimizer, model_log_prob in ((opt_a, a.log_prob), (opt_b, log_prob)):
                optimizer.zero_grad(set_to_none=True)
                (-model_log_prob(first).mean()).backward()
                (-model_log_prob(second).mean()).backward()
                optimizer.step()
            assert all(layer.weight.grad is buffer for layer, buffer in zip(b.masked_layers, training.gradients, strict=True))
    for (key, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-12), key
        assert torch.allclose(p.grad, q.grad, rtol=0, atol=1e-12), key


def test_a_run_resumes_exactly_across_the_training_paths(tmp_path, monkeypatch):
    """A wide one-mask run takes the sorted path by itself; its checkpoints are in the model's layout, so a run
    interrupted on one path resumes on the other, and the two paths give the same run (float64 data, SGD)."""
    from test_train import Interrupt, toy_data

    from replication.training import train
    from replication.training.train import TrainConfig, Trainer

    config = MADEConfig(input_dim=10, hidden_sizes=[40], num_masks=1, random_ordering=True, seed=2)
    recipe = TrainConfig(optimizer="sgd", lr=0.05, batch_size=32, patience=50, max_epochs=4)
    data = toy_data()
    data = dataclasses.replace(data, train=data.train.double(), valid=data.valid.double(), test=data.test.double())
    assert not train.sorted_training_pays(MADE(config))
    monkeypatch.setattr(evaluate, "STRUCTURED_MIN_UNITS", 40)
    assert train.sorted_training_pays(MADE(config))
    assert not train.sorted_training_pays(MADE(MADEConfig(input_dim=10, hidden_sizes=[40], num_masks=2, order_agnostic=True)))

    def crash_after_two(trainer: Trainer) -> None:
        if trainer.epoch == 2:
            raise Interrupt

    straight_model = MADE(config).double()
    straight = Trainer(straight_model, data, recipe, progress=False, structured=False).run()
    interrupted = Trainer(MADE(config).double(), data, recipe, tmp_path / "run.pt", progress=False)  # sorted path
    with pytest.raises(Interrupt):
        interrupted.run(on_epoch_end=crash_after_two)
    resumed_model = MADE(config).double()
    resumed = Trainer(resumed_model, data, recipe, tmp_path / "run.pt", progress=False, structured=False).run()
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for a, b in zip(straight.history, resumed.history):
        assert a["train_nll"] == pytest.approx(b["train_nll"], rel=1e-12)
        assert a["valid_nll"] == pytest.approx(b["valid_nll"], rel=1e-9)
    for p, q in zip(straight_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.allclose(p, q, rtol=0, atol=1e-10)
