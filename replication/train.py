"""Minibatch maximum-likelihood training with early stopping, atomic checkpoints and exact resume."""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .data import BinaryDataset
from .errors import ReplicationError
from .evaluate import evaluate_nll
from .made import MADE, MADEConfig

OPTIMIZERS = ("adagrad", "adam", "sgd")


@dataclass
class TrainConfig:
    """Optimisation recipe.  Defaults follow the official MNIST command (Adagrad 0.01, batch 100, look-ahead 30)."""

    optimizer: str = "adagrad"
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 100
    patience: int = 30  # epochs without a better validation NLL before stopping
    max_epochs: int = 1000
    valid_masks: int = 1  # masks in the validation ensemble used for early stopping
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ReplicationError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("lr", "batch_size", "max_epochs", "valid_masks"):
            if getattr(self, name) <= 0:
                raise ReplicationError(f"{name} must be positive, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.patience < 0:
            raise ReplicationError("weight_decay and patience must be >= 0")


@dataclass
class TrainResult:
    """What a finished training run returns (also stored in its checkpoint)."""

    epochs: int
    best_epoch: int
    best_valid_nll: float
    stopped_early: bool
    seconds: float
    history: list[dict[str, float]]


def make_optimizer(model: MADE, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer, using PyTorch's fused kernel where this device has one (same algorithm, ~30% faster)."""
    cls = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[config.optimizer]
    try:
        return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this optimizer on this device
        return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def same_recipe_but_cap(state: dict[str, Any], model_config: dict[str, Any], train_config: dict[str, Any]) -> bool:
    """Whether a checkpoint was made with these configurations, up to ``max_epochs``."""
    saved = {**state["train_config"], "max_epochs": None}
    return state["model_config"] == model_config and saved == {**train_config, "max_epochs": None}


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Trains a MADE on a data set; ``run()`` resumes from ``checkpoint_path`` when it exists."""

    def __init__(
        self,
        model: MADE,
        data: BinaryDataset,
        config: TrainConfig,
        checkpoint_path: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        self.model, self.data, self.config = model, data, config
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress = progress
        self.device = model.output.weight.device
        self.optimizer = make_optimizer(model, config)
        self.shuffle_rng = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)  # dropout draws from the global generator
        self.epoch = 0
        self.best = {"epoch": 0, "valid_nll": float("inf"), "state": copy.deepcopy(model.state_dict())}
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self.finished = False

    # ----------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "model_config": asdict(self.model.config),
            "train_config": asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "shuffle_rng": self.shuffle_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "mask_index": self.model.mask_index,
            "best": self.best,
            "history": self.history,
            "seconds": self.seconds,
            "finished": self.finished,
            "data": self.data.fingerprint(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint of the same configuration; a raised ``max_epochs`` continues a run stopped at its cap."""
        if not same_recipe_but_cap(state, asdict(self.model.config), asdict(self.config)):
            raise ReplicationError(
                f"checkpoint {self.checkpoint_path} was made with a different configuration; "
                "use another output folder or delete the checkpoint"
            )
        if state["epoch"] > self.config.max_epochs:
            raise ReplicationError(
                f"checkpoint {self.checkpoint_path} has {state['epoch']} epochs, more than max_epochs={self.config.max_epochs}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.shuffle_rng.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        self.seconds = state["seconds"]
        self.finished = self.stops_here()  # not the saved flag: the cap may have been raised
        self.model.set_mask(state["mask_index"])

    def save(self) -> None:
        if self.checkpoint_path is not None:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            save_atomic(self.state(), self.checkpoint_path)

    # -------------------------------------------------------------- training
    def patience_over(self) -> bool:
        """``patience`` epochs have passed without a better validation NLL."""
        return self.epoch - self.best["epoch"] >= self.config.patience

    def stops_here(self) -> bool:
        """Early stopping or the epoch cap ends training after the current epoch."""
        return self.patience_over() or self.epoch >= self.config.max_epochs

    def train_epoch(self) -> float:
        """One pass over the shuffled training set, one mask per minibatch; returns the mean NLL."""
        self.model.train()
        train = self.data.train
        order = torch.randperm(train.shape[0], generator=self.shuffle_rng)
        total = 0.0
        for start in range(0, train.shape[0], self.config.batch_size):
            batch = train[order[start : start + self.config.batch_size]].to(self.device)
            self.model.next_mask()
            loss = -self.model.log_prob(batch).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * batch.shape[0]
        return total / train.shape[0]

    def run(self, on_epoch_end: Callable[[Trainer], None] | None = None) -> TrainResult:
        """Train until early stopping or ``max_epochs``, then restore the best parameters."""
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            self.load_state(torch.load(self.checkpoint_path, weights_only=False))
        cfg = self.config
        interactive = sys.stderr.isatty()
        bar = tqdm(total=cfg.max_epochs, initial=self.epoch, disable=not self.progress, unit="epoch",
                   dynamic_ncols=interactive, mininterval=0.1 if interactive else 15.0)  # fmt: skip
        while not self.finished:
            started = time.perf_counter()
            train_nll = self.train_epoch()
            valid_nll = evaluate_nll(self.model, self.data.valid, n_masks=cfg.valid_masks).nats
            self.epoch += 1
            self.seconds += time.perf_counter() - started
            if valid_nll < self.best["valid_nll"]:
                self.best = {"epoch": self.epoch, "valid_nll": valid_nll, "state": copy.deepcopy(self.model.state_dict())}
            self.history.append({"epoch": self.epoch, "train_nll": train_nll, "valid_nll": valid_nll})
            self.finished = self.stops_here()
            self.save()
            bar.update(1)
            bar.set_postfix(
                train=f"{train_nll:.2f}", valid=f"{valid_nll:.2f}", best=f"{self.best['valid_nll']:.2f}@{self.best['epoch']}"
            )
            if on_epoch_end is not None:
                on_epoch_end(self)
        bar.close()
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
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = MADE(model_config).to(device)
    model.set_mask(0)  # rebuild masks on the device
    trainer = Trainer(model, data, config, checkpoint_path, progress)
    return model, trainer.run()
