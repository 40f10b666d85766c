"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., ICML 2015), in PyTorch."""

from .config import EvalConfig, MADEConfig, TrainConfig
from .data import BinaryDataset, load_dataset, registry
from .errors import CheckpointError, ConfigError, DataError, ReplicationError, TrainingError
from .evaluate import NLL, evaluate_nll
from .made import MADE
from .train import Trainer, fit

__all__ = [
    "MADE", "MADEConfig", "TrainConfig", "EvalConfig", "BinaryDataset", "load_dataset", "registry", "ReplicationError",
    "ConfigError", "DataError", "CheckpointError", "TrainingError", "NLL", "evaluate_nll", "Trainer", "fit",
]  # fmt: skip
