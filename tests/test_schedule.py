"""What each training step takes: its minibatch (shuffled or the official fixed order) and its mask (the cycled or the
official schedule), and which masks an ensemble scores. Traced by recording every call, not by reading the code."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from test_train import toy_data

from replication.errors import ConfigError
from replication.model.made import MADE, MADEConfig
from replication.training.evaluate import log_likelihoods
from replication.training.train import TrainConfig, Trainer

K_MASKS = MADEConfig(input_dim=10, hidden_sizes=[16], num_masks=3, order_agnostic=True, connectivity_agnostic=True, seed=1)
TRAIN = TrainConfig(optimizer="adam", lr=1e-3, batch_size=50, patience=50, max_epochs=3)


def trace_training(model: MADE, config: TrainConfig, epochs: int = 3) -> list[list[tuple[tuple[float, ...], int]]]:
    """Every minibatch of each epoch as (its rows' fingerprints, the mask it trained under)."""
    data = toy_data()
    trainer = Trainer(model, data, dataclasses.replace(config, max_epochs=epochs), progress=False)
    seen: list[list[tuple[tuple[float, ...], int]]] = []

    def recording(batch: torch.Tensor, mask: int) -> torch.Tensor:
        seen[-1].append((fingerprint(batch), mask))
        return model.log_prob(batch, mask)

    def training_path():
        seen.append([])
        return contextlib.nullcontext(recording)

    trainer.training_path = training_path
    trainer.run()
    return seen


def fingerprint(rows: torch.Tensor) -> tuple[float, ...]:
    return tuple((rows * torch.arange(1, rows.shape[1] + 1)).sum(1).tolist())


def test_each_minibatch_trains_under_the_mask_after_the_last_one():
    epochs = trace_training(MADE(K_MASKS), TRAIN)
    masks = [mask for epoch in epochs for _, mask in epoch]
    assert masks[:7] == [1, 2, 0, 1, 2, 0, 1]  # 6 minibatches an epoch: the cycle runs on across epochs
    assert len(masks) == 18 and set(masks) == {0, 1, 2}


def test_a_new_mask_every_minibatch_never_repeats_one():
    masks = [m for epoch in trace_training(MADE(dataclasses.replace(K_MASKS, num_masks=0)), TRAIN) for _, m in epoch]
    assert masks == list(range(1, 19))


def test_shuffled_minibatches_differ_from_epoch_to_epoch():
    epochs = trace_training(MADE(K_MASKS), TRAIN)
    assert [rows for rows, _ in epochs[0]] != [rows for rows, _ in epochs[1]]
    rows = toy_data().train
    assert sorted(r for rows_, _ in epochs[0] for r in rows_) == sorted(fingerprint(rows))  # every row, once


def test_the_fixed_order_takes_the_same_consecutive_rows_in_file_order_every_epoch():
    epochs = trace_training(MADE(K_MASKS), dataclasses.replace(TRAIN, minibatch_order="fixed"))
    rows = toy_data().train
    expected = [fingerprint(rows[i : i + 50]) for i in range(0, 300, 50)]
    assert all([batch for batch, _ in epoch] == expected for epoch in epochs)


def test_the_official_schedule_trains_k_plus_one_masks_and_scores_the_k_plus_one_after_the_first():
    model = MADE(dataclasses.replace(K_MASKS, mask_schedule="official"))
    trained = [m for epoch in trace_training(model, TRAIN) for _, m in epoch]
    assert trained[:9] == [1, 2, 3, 0, 1, 2, 3, 0, 1] and set(trained) == {0, 1, 2, 3}  # masks 1..K+1, 1-based

    scored: list[int] = []
    log_prob = model.log_prob
    model.log_prob = lambda x, mask=0: scored.append(mask) or log_prob(x, mask)
    log_likelihoods(model, toy_data().test, n_masks=4)
    assert scored == [1, 2, 3, 4]  # masks 2..K+2, 1-based: the last never trained
    orderings = {tuple(model.ordering(k).tolist()) for k in range(5)}
    assert len(orderings) == 5  # five distinct masks in all: 0..K+1


def test_the_cycled_schedule_scores_the_masks_it_trains():
    model = MADE(K_MASKS)
    scored: list[int] = []
    log_prob = model.log_prob
    model.log_prob = lambda x, mask=0: scored.append(mask) or log_prob(x, mask)
    log_likelihoods(model, toy_data().test, n_masks=3)
    assert scored == [0, 1, 2]


@pytest.mark.parametrize("masks", [0, 1])
def test_the_official_schedule_needs_a_k_mask_set(masks):
    with pytest.raises(ConfigError, match="num_masks >= 2"):
        dataclasses.replace(K_MASKS, num_masks=masks, mask_schedule="official")


def test_bad_schedule_and_order_names_are_refused():
    with pytest.raises(ConfigError, match="mask_schedule must be one of cycled, official"):
        dataclasses.replace(K_MASKS, mask_schedule="random")
    with pytest.raises(ConfigError, match="minibatch_order must be one of shuffled, fixed"):
        dataclasses.replace(TRAIN, minibatch_order="sorted")
