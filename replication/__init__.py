"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., ICML 2015), in PyTorch."""

from .data import BinaryDataset, load_dataset, registry
from .errors import DataError, ReplicationError
from .evaluate import NLL, evaluate_nll
from .made import MADE, MADEConfig
from .train import TrainConfig, Trainer, fit

__all__ = [
    "MADE", "MADEConfig", "BinaryDataset", "load_dataset", "registry", "DataError", "ReplicationError",
    "NLL", "evaluate_nll", "TrainConfig", "Trainer", "fit",
]  # fmt: skip
