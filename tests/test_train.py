"""Training: determinism, early stopping with best parameters restored, exact resume."""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys

import pytest
import torch

from replication.errors import ReplicationError
from replication.model.made import MADE, MADEConfig
from replication.training.data import BinaryDataset
from replication.training.evaluate import evaluate_nll
from replication.training.train import TrainConfig, Trainer, fit


def toy_data(dim: int = 10, seed: int = 0) -> BinaryDataset:
    """Correlated binary data: a noisy copy of a few prototypes."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randint(0, 2, (4, dim), generator=gen).float()

    def draw(n):
        x = protos[torch.randint(0, 4, (n,), generator=gen)]
        flip = torch.rand(n, dim, generator=gen) < 0.1
        return torch.where(flip, 1 - x, x)

    return BinaryDataset("toy", draw(300), draw(100), draw(100), "memory", "none")


MODEL = MADEConfig(
    input_dim=10, hidden_sizes=[32, 32], num_masks=3, order_agnostic=True, connectivity_agnostic=True, dropout=0.1, seed=1
)
TRAIN = TrainConfig(optimizer="adam", lr=3e-3, batch_size=32, patience=50, max_epochs=6)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["adam", "adagrad_official"])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, optimizer):
    data = toy_data()
    config = dataclasses.replace(TRAIN, optimizer=optimizer)
    straight, result = fit(MODEL, data, config, tmp_path / "a.pt", progress=False)

    def crash_after_three(trainer: Trainer) -> None:
        if trainer.epoch == 3:
            raise Interrupt

    interrupted = Trainer(MADE(MODEL), data, config, tmp_path / "b.pt", progress=False)
    with pytest.raises(Interrupt):
        interrupted.run(on_epoch_end=crash_after_three)
    torch.manual_seed(12345)  # the process that resumes starts with other RNG state
    resumed_model = MADE(MODEL)
    resumed = Trainer(resumed_model, data, config, tmp_path / "b.pt", progress=False).run()
    assert resumed.history == result.history
    for (name, p), q in zip(straight.state_dict().items(), resumed_model.state_dict().values()):
        if isinstance(p, torch.Tensor):
            assert torch.equal(p, q), name


def test_training_is_deterministic_and_learns():
    data = toy_data()
    a, ra = fit(MODEL, data, TRAIN, progress=False)
    b, rb = fit(MODEL, data, TRAIN, progress=False)
    assert ra.history == rb.history
    untrained = evaluate_nll(MADE(MODEL), data.valid).nats
    assert ra.history[-1]["valid_nll"] < untrained - 0.5


def test_early_stopping_restores_the_best_parameters():
    data = toy_data()
    config = TrainConfig(optimizer="sgd", lr=2.0, batch_size=16, patience=3, max_epochs=100)  # unstable on purpose
    model, result = fit(MADEConfig(input_dim=10, hidden_sizes=[64], seed=0), data, config, progress=False)
    assert result.stopped_early and result.epochs == result.best_epoch + 3
    assert evaluate_nll(model, data.valid).nats == pytest.approx(result.best_valid_nll, rel=1e-6)
    assert result.best_valid_nll == min(h["valid_nll"] for h in result.history)


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    data = toy_data()
    fit(MODEL, data, TRAIN, tmp_path / "c.pt", progress=False)
    other = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, max_epochs=6)
    with pytest.raises(ReplicationError, match="different configuration"):
        fit(MODEL, data, other, tmp_path / "c.pt", progress=False)


def test_raising_the_epoch_cap_continues_the_run_exactly(tmp_path):
    data = toy_data()
    _, straight = fit(MODEL, data, TRAIN, progress=False)
    short = TrainConfig(**{**TRAIN.__dict__, "max_epochs": 3})
    _, capped = fit(MODEL, data, short, tmp_path / "d.pt", progress=False)
    assert capped.epochs == 3 and not capped.stopped_early
    _, extended = fit(MODEL, data, TRAIN, tmp_path / "d.pt", progress=False)
    assert extended.history == straight.history  # epochs 4-6 continue where the capped run stopped
    with pytest.raises(ReplicationError, match="more than max_epochs"):
        fit(MODEL, data, short, tmp_path / "d.pt", progress=False)  # a lower cap cannot undo epochs


def test_bad_training_options_are_rejected():
    with pytest.raises(ReplicationError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ReplicationError, match="batch_size"):
        TrainConfig(batch_size=0)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_stops_the_page_faults_of_reallocating_a_gradient():
    """A 64 MB block freed and allocated again comes back as fresh pages (a fault per 4 KiB) until
    ``keep_freed_memory`` asks malloc to keep it. Run in a fresh process: the setting is process-wide."""
    script = """
import resource, torch
from replication.training.device import keep_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(16 * 2**20).fill_(1.0)  # 64 MB, touched, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
default = faults()
assert keep_freed_memory()
faults()  # the first allocation after the change still takes fresh pages
print(default, faults())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    default, kept = int(out[0]), int(out[1])
    assert default > 5 * 16 * 2**20 * 4 // 4096 * 0.9  # every 4 KiB page of every allocation faulted
    assert kept < default / 100
