"""The numbers a run reports: the NLL of the right split, of the right ensemble, with the right standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_train import toy_data

from conftest import all_binary, make_model
from replication.model.made import MADEConfig
from replication.training.config import EvalConfig, TrainConfig
from replication.training.data import BinaryDataset
from replication.training.evaluate import evaluate_nll, log_likelihoods, summarize
from replication.training.runs import train_run
from replication.training.train import fit


def test_the_standard_error_is_the_sample_sd_over_root_n_and_bits_are_nats_over_d_ln_2():
    nll = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)  # mean 3.5, sample variance 7 (ddof=1)
    result = summarize(nll, dim=5, n_masks=1)
    assert result.nats == 3.5 and result.n == 4
    assert result.stderr == math.sqrt(7.0) / 2.0  # sd(ddof=1)/sqrt(n), exactly; with ddof=0 it is sqrt(5.25)/2
    assert result.bits_per_dim == 3.5 / (5 * math.log(2))


def test_an_ensemble_nll_is_the_log_of_the_mean_probability_of_its_masks():
    model = make_model(6, num_masks=5, order_agnostic=True, connectivity_agnostic=True)
    x = all_binary(6)[::3]
    with torch.no_grad():
        brute = -torch.stack([model.log_prob(x, k).exp() for k in range(4)]).mean(dim=0).log()
    got = -log_likelihoods(model, x, n_masks=4, batch_size=7)  # several batches
    assert torch.allclose(got, brute, rtol=0, atol=1e-13)  # measured: 0 in float64 (one batch order)
    assert evaluate_nll(model, x, n_masks=4).nats == pytest.approx(float(brute.mean()), rel=1e-14)


def test_early_stopping_stops_exactly_patience_epochs_after_the_best():
    config = TrainConfig(optimizer="sgd", lr=2.0, batch_size=16, patience=3, max_epochs=100)  # unstable on purpose
    _, result = fit(MADEConfig(input_dim=10, hidden_sizes=[64], seed=0), toy_data(), config, progress=False)
    best = min(range(len(result.history)), key=lambda i: result.history[i]["valid_nll"]) + 1
    assert result.stopped_early and result.best_epoch == best and result.epochs == best + 3
    assert all(h["valid_nll"] >= result.best_valid_nll for h in result.history[best:])


def test_the_recorded_test_nll_is_computed_on_the_test_split(tmp_path):
    """Validation and test rows from different distributions: the record's test NLL is the test split's."""
    data = toy_data()
    gen = torch.Generator().manual_seed(5)
    other = (torch.rand(100, 10, generator=gen) < 0.5).float()  # unlike the training data: a much higher NLL
    data = BinaryDataset("toy", data.train, data.valid, other, "memory", "none")
    model_config = MADEConfig(input_dim=10, hidden_sizes=[16], num_masks=2, order_agnostic=True, seed=0)
    train = TrainConfig(optimizer="adam", lr=1e-2, batch_size=32, max_epochs=10)
    model, record = train_run(tmp_path / "run", data, model_config, train, EvalConfig(test_masks=2), progress=False)
    test, valid = evaluate_nll(model, data.test, n_masks=2), evaluate_nll(model, data.valid, n_masks=2)
    assert record.test_nll.nats == test.nats and record.valid_nll.nats == valid.nats
    assert test.nats > valid.nats + 1.0
    per_example = np.load(tmp_path / "run" / "test_nll.npy")
    assert per_example.shape == (100,) and float(per_example.mean()) == pytest.approx(test.nats, rel=1e-6)  # float32 file
