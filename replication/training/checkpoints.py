"""Checkpoint and model files: plain data (tensors, numbers, strings), read only with ``weights_only=True``.

``checkpoint.pt`` (written after every epoch, for resume) holds each piece of state once: the model and
training configurations, the data's fingerprint, the epoch, the current mask, the parameters, the
optimizer, the random generators, the best parameters so far and the history.  ``model.pt`` holds the
best parameters with the model configuration and the data's fingerprint.  A file that is truncated,
foreign, or would run code when unpickled is refused with a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, first_line
from ..files import save_torch

FORMAT = 2  # 1: the first release (configs repeated, no "format" key)
CHECKPOINT_KEYS = {"format", "model_config", "train_config", "data", "epoch", "mask_index", "model", "optimizer", "rng",
                   "best", "history", "seconds"}  # fmt: skip
MODEL_KEYS = {"format", "config", "state", "data"}


def read(path: str | os.PathLike, keys: set[str], remedy: str) -> dict[str, Any]:
    """Load a project file safely and check its format; ``remedy`` says what to do when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; {remedy}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the weights-only unpickler's remarks on foreign files
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling refused, truncated zip, not a torch file: all are unusable
        reason = first_line(exc)
        raise CheckpointError(f"{path} is not a readable file of this project ({reason}); {remedy}") from None
    if isinstance(state, dict) and "format" not in state and ("model_config" in state or "config" in state):
        raise CheckpointError(f"{path} was written by the first release of this project, which is no longer read; {remedy}")
    if not isinstance(state, dict) or state.get("format") != FORMAT or not keys <= set(state):
        raise CheckpointError(f"{path} is not a format-{FORMAT} file of this project; {remedy}")
    return state


CHECKPOINT_TYPES = {"model_config": dict, "train_config": dict, "data": dict, "epoch": int, "mask_index": int,
                    "model": dict, "optimizer": dict, "rng": dict, "best": dict, "history": list, "seconds": float}  # fmt: skip


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint whose every field has its type (a malformed one is refused with its path and the field)."""
    remedy = f"delete it to train this run afresh (rm {path})"
    state = read(path, CHECKPOINT_KEYS, remedy)
    for key, kind in CHECKPOINT_TYPES.items():
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise CheckpointError(f"{path}: field {key!r} is a {type(value).__name__}, not a {kind.__name__}; {remedy}")
    if not {"epoch", "valid_nll", "state"} <= set(state["best"]):
        raise CheckpointError(f"{path}: field 'best' lacks its epoch, validation NLL or parameters; {remedy}")
    return state


def read_model(path: str | os.PathLike) -> dict[str, Any]:
    return read(path, MODEL_KEYS, f"train into {Path(path).parent} again (python -m replication train --out ...)")


def write_model(path: str | os.PathLike, config: dict[str, Any], state: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    save_torch({"format": FORMAT, "config": config, "state": state, "data": data}, path)
