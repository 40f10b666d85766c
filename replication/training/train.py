"""Minibatch maximum-likelihood training with early stopping, atomic checkpoints and exact resume."""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, TrainingError, first_line
from ..files import save_torch
from ..model.made import MADE
from .checkpoints import FORMAT, read_checkpoint
from .clock import running_clock
from .config import MADEConfig, TrainConfig, identity_recipe
from .console import EpochLog
from .data import SPLITS, BinaryDataset
from .device import check_fits, keep_freed_memory, resolve_device
from .evaluate import evaluate_nll, structured_pays
from .optimizers import make_optimizer
from .structured import structured_training

__all__ = ["TrainConfig", "TrainResult", "Trainer", "fit"]


@dataclass
class TrainResult:
    """What a finished training run returns."""

    epochs: int
    best_epoch: int
    best_valid_nll: float
    stopped_early: bool
    seconds: float
    history: list[dict[str, float]]


def sorted_training_pays(model: MADE) -> bool:
    """Whether training steps run on the structured path with sorted parameters: a one-mask model without dropout
    where evaluation takes it too (:func:`structured_pays`: on CPU, wide enough; ``make bench`` measures both paths).
    A K-mask model stays dense: gathering its mask's layout every step costs more on CPU than the halved products
    save."""
    return model.single_mask and model.config.dropout == 0 and structured_pays(model)


def same_recipe(model_config: dict[str, Any], train_config: dict[str, Any], model: MADEConfig, train: TrainConfig) -> bool:
    """Whether recorded configurations describe the same run as these (by the identity rule of ``config``)."""
    saved = identity_recipe({**model_config, **train_config})
    return model_config.get("input_dim") == model.input_dim and saved == identity_recipe({**asdict(model), **asdict(train)})


def same_data(saved: dict[str, Any], data: dict[str, Any]) -> bool:
    """Whether two data fingerprints describe the same file and rows (the stored path may differ)."""
    keys = ("sha256", "dim", "sizes")
    return all(saved.get(k) == data.get(k) for k in keys)


class Trainer:
    """Trains a MADE on a data set; ``run()`` resumes from ``checkpoint_path`` when it exists."""

    def __init__(
        self,
        model: MADE,
        data: BinaryDataset,
        config: TrainConfig,
        checkpoint_path: str | os.PathLike | None = None,
        progress: bool = True,
        structured: bool | None = None,
    ) -> None:
        self.model, self.data, self.config = model, data, config
        self.structured = structured  # the path of training steps: None chooses (see `sorted_training_pays`)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress = progress
        self.device = model.output.weight.device
        self.train_rows = data.train.to(self.device)  # resident on the device for the whole run
        self.valid_rows = data.valid.to(self.device)
        self.optimizer = make_optimizer(model.parameters(), config.optimizer, config.lr, config.weight_decay)
        self.shuffle_rng = torch.Generator().manual_seed(model.config.seed)
        torch.manual_seed(model.config.seed)  # dropout draws from the global generator
        self.mask_index = 0  # the mask of the last minibatch; the next one trains with the mask after it
        self.epoch = 0
        self.best = {"epoch": 0, "valid_nll": float("inf"), "state": copy.deepcopy(model.state_dict())}
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0

    # ----------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        rng = {"shuffle": self.shuffle_rng.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "format": FORMAT,
            "model_config": asdict(self.model.config),
            "train_config": asdict(self.config),
            "data": self.data.fingerprint(),
            "epoch": self.epoch,
            "mask_index": self.mask_index,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "best": self.best,
            "history": self.history,
            "seconds": self.seconds,
        }

    def check_state(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint of another run (by the identity rule: ``max_epochs`` may differ), data set, or a later
        epoch."""
        where = self.checkpoint_path
        if not same_recipe(state["model_config"], state["train_config"], self.model.config, self.config):
            raise CheckpointError(
                f"checkpoint {where} was made with a different configuration; use another output folder or delete it"
            )
        if not same_data(state["data"], self.data.fingerprint()):
            raise CheckpointError(
                f"checkpoint {where} was trained on other data (SHA-256 {str(state['data'].get('sha256'))[:12]}..., "
                f"not {self.data.sha256[:12]}... of {self.data.name}); use another output folder"
            )
        if state["epoch"] > self.config.max_epochs:
            raise CheckpointError(
                f"checkpoint {where} has {state['epoch']} epochs, more than max_epochs={self.config.max_epochs}"
            )

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint of the same configuration and data; a raised ``max_epochs`` continues a capped run."""
        self.check_state(state)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.shuffle_rng.set_state(state["rng"]["shuffle"])
            torch.set_rng_state(state["rng"]["torch"])
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            reason = first_line(exc)
            raise CheckpointError(f"checkpoint {self.checkpoint_path} does not fit this model ({reason}); delete it") from None
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        self.seconds, self.mask_index = state["seconds"], state["mask_index"]

    def save(self) -> None:
        if self.checkpoint_path is not None:
            save_torch(self.state(), self.checkpoint_path)

    # -------------------------------------------------------------- training
    def patience_over(self) -> bool:
        """``patience`` epochs have passed without a better validation NLL."""
        return self.epoch - self.best["epoch"] >= self.config.patience

    def stops_here(self) -> bool:
        """Early stopping or the epoch cap ends training after the current epoch."""
        return self.patience_over() or self.epoch >= self.config.max_epochs

    def diverged(self, what: str) -> str:
        return f"training diverged at epoch {self.epoch + 1} (non-finite {what}); lower the learning rate (lr={self.config.lr})"

    def training_path(self) -> contextlib.AbstractContextManager[Callable[[torch.Tensor, int], torch.Tensor]]:
        """The log-likelihood a training step differentiates: the sorted layout's where it pays (``structured``, or
        :func:`sorted_training_pays` when ``None``), else the model's own."""
        if self.structured if self.structured is not None else sorted_training_pays(self.model):
            return structured_training(self.model, self.optimizer)
        return contextlib.nullcontext(self.model.log_prob)

    def epoch_order(self, rows: int) -> torch.Tensor:
        """The order of the training rows this epoch: a fresh permutation, or file order for a fixed minibatch order
        (which draws nothing from the shuffling generator)."""
        if self.config.minibatch_order == "fixed":
            return torch.arange(rows, device=self.device)
        return torch.randperm(rows, generator=self.shuffle_rng).to(self.device)

    def train_epoch(self) -> float:
        """One pass over the training set (shuffled, or in file order with ``minibatch_order = "fixed"``), each
        minibatch under the mask after the last one; returns the mean NLL.

        The running loss stays on the device (no host synchronisation per step); a non-finite mean
        stops training with :class:`TrainingError`.
        """
        self.model.train()
        rows, size = self.train_rows.shape[0], self.config.batch_size
        order = self.epoch_order(rows)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        with self.training_path() as log_prob:
            for start in range(0, rows, size):
                batch = self.train_rows[order[start : start + size]]
                self.mask_index = self.model.mask_set.following(self.mask_index)
                loss = -log_prob(batch, self.mask_index).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach().double() * batch.shape[0]
        mean = float(total) / rows
        if not math.isfinite(mean):
            raise TrainingError(self.diverged("training loss"))
        return mean

    def run(self, on_epoch_end: Callable[[Trainer], None] | None = None) -> TrainResult:
        """Train until early stopping or ``max_epochs``, then restore the best parameters."""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_state(read_checkpoint(self.checkpoint_path))
        cfg = self.config
        log, clock = EpochLog(self.progress, self.epoch), running_clock()
        while not self.stops_here():
            started = clock.now()
            train_nll = self.train_epoch()
            valid_nll = evaluate_nll(self.model, self.valid_rows, n_masks=cfg.valid_masks).nats
            if not math.isfinite(valid_nll):
                raise TrainingError(self.diverged("validation NLL"))
            self.epoch += 1
            self.seconds += clock.now() - started  # time stopped (kill -STOP) left out
            if valid_nll < self.best["valid_nll"]:
                self.best = {"epoch": self.epoch, "valid_nll": valid_nll, "state": copy.deepcopy(self.model.state_dict())}
            self.history.append({"epoch": self.epoch, "train_nll": train_nll, "valid_nll": valid_nll})
            self.save()
            log.epoch(self.epoch, train_nll, valid_nll, self.best, self.seconds / self.epoch)
            if on_epoch_end is not None:
                on_epoch_end(self)
        why = f"no better validation NLL for {cfg.patience} epochs" if self.patience_over() else f"epoch cap {cfg.max_epochs}"
        log.close(self.epoch, self.best, why)
        self.model.load_state_dict(self.best["state"])
        return TrainResult(
            epochs=self.epoch,
            best_epoch=self.best["epoch"],
            best_valid_nll=self.best["valid_nll"],
            stopped_early=self.patience_over(),
            seconds=self.seconds,
            history=self.history,
        )


def fit(
    model_config: MADEConfig,
    data: BinaryDataset,
    config: TrainConfig,
    checkpoint_path: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[MADE, TrainResult]:
    """Build a MADE, train it (resuming from ``checkpoint_path`` if present) and return it with the best parameters."""
    device = resolve_device(device)
    check_fits(model_config, config, device, rows=max(len(data.split(s)) for s in SPLITS))
    if device.type == "cpu":
        keep_freed_memory()
    model = MADE(model_config).to(device)
    trainer = Trainer(model, data, config, checkpoint_path, progress)
    return model, trainer.run()
