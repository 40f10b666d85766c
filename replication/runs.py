"""A run folder: train a MADE into it (resumable), then read back its model and metrics.

Layout of ``DIR``: ``checkpoint.pt`` (written every epoch, for resume), ``model.pt`` (best
parameters and config), ``metrics.json`` (config, data fingerprint, epochs, wall time, NLLs).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .data import BinaryDataset
from .errors import ReplicationError
from .evaluate import evaluate_nll
from .made import MADE, MADEConfig
from .train import TrainConfig, fit, save_atomic

METRICS, MODEL, CHECKPOINT = "metrics.json", "model.pt", "checkpoint.pt"


def write_json(obj: Any, path: Path) -> None:
    """Write JSON atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def train_run(
    out_dir: str | os.PathLike,
    data: BinaryDataset,
    model_config: MADEConfig,
    train_config: TrainConfig,
    test_masks: int = 1,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) into ``out_dir``, evaluate valid and test NLL, write and return the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model, result = fit(model_config, data, train_config, out / CHECKPOINT, device=device, progress=progress)
    eval_started = time.perf_counter()
    valid = evaluate_nll(model, data.valid, n_masks=test_masks)
    test = evaluate_nll(model, data.test, n_masks=test_masks)
    metrics = {
        "model_config": asdict(model_config),
        "train_config": asdict(train_config),
        "test_masks": test_masks,
        "data": data.fingerprint(),
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "train_seconds": result.seconds,
        "seconds_per_epoch": result.seconds / max(result.epochs, 1),
        "eval_seconds": time.perf_counter() - eval_started,
        "wall_seconds_this_call": time.perf_counter() - started,
        "valid_nll": valid.as_dict(),
        "test_nll": test.as_dict(),
        "history": result.history,
        "device": str(model.output.weight.device),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    save_atomic({"config": asdict(model_config), "state": model.state_dict()}, out / MODEL)
    write_json(metrics, out / METRICS)
    return metrics


def load_model(run_dir: str | os.PathLike, device: str | None = None) -> MADE:
    """The best model saved in a run folder."""
    path = Path(run_dir) / MODEL
    if not path.is_file():
        raise ReplicationError(f"{path} not found: train into {run_dir} first (python -m replication train --out {run_dir})")
    saved = torch.load(path, map_location=device or "cpu", weights_only=False)
    model = MADE(MADEConfig(**saved["config"]))
    model.load_state_dict(saved["state"])
    return model.to(device or "cpu")


def load_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise ReplicationError(f"{path} not found: the run in {run_dir} has not finished")
    return json.loads(path.read_text())
