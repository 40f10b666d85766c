"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., ICML 2015), in PyTorch."""

from .errors import CheckpointError, ConfigError, DataError, ReplicationError, TrainingError
from .model.made import MADE
from .training.config import EvalConfig, MADEConfig, TrainConfig
from .training.data import BinaryDataset, load_dataset, registry
from .training.evaluate import NLL, evaluate_nll
from .training.train import Trainer, fit

__all__ = [
    "MADE", "MADEConfig", "TrainConfig", "EvalConfig", "BinaryDataset", "load_dataset", "registry", "ReplicationError",
    "ConfigError", "DataError", "CheckpointError", "TrainingError", "NLL", "evaluate_nll", "Trainer", "fit",
]  # fmt: skip
