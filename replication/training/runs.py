"""A run folder: train a MADE into it (resumable, locked), then read back its model and metrics.

Layout of ``DIR``: ``checkpoint.pt`` (written every epoch, for resume), ``model.pt`` (best
parameters, config and data fingerprint), ``metrics.json`` (configs, data fingerprint, epochs,
wall time, NLLs), ``test_nll.npy`` (per-example test NLLs) and ``lock`` (held while a process trains into it).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..errors import ConfigError, ReplicationError, first_line
from ..files import locked, write_array
from ..model.made import MADE
from .checkpoints import read_model, write_model
from .clock import running_clock
from .config import EvalConfig, MADEConfig, TrainConfig, config_from_dict
from .data import BinaryDataset
from .device import resolve_device
from .evaluate import evaluate_nll, log_likelihoods, summarize
from .record import RunRecord, read_record, write_record
from .train import fit

METRICS, MODEL, CHECKPOINT, LOCK = "metrics.json", "model.pt", "checkpoint.pt", "lock"
PER_EXAMPLE = "test_nll.npy"  # per-example test NLLs (float32): paired comparisons between models


def prepare_folder(out: Path) -> None:
    """Create the run folder, or say clearly why it cannot be used."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is a file; give a folder path with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out} ({exc.strerror}); choose a writable place") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {out} is not writable; choose a writable place")


def train_run(
    out_dir: str | os.PathLike,
    data: BinaryDataset,
    model_config: MADEConfig,
    train_config: TrainConfig,
    eval_config: EvalConfig | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[MADE, RunRecord]:
    """Train (or resume) into ``out_dir``, evaluate valid and test NLL, write the record; return the model and it."""
    if not str(out_dir).strip():
        raise ConfigError("the run folder is an empty path; give a folder")
    out, eval_config = Path(out_dir), eval_config or EvalConfig()
    prepare_folder(out)
    with locked(out / LOCK, f"run folder {out}", wait=False):
        started = time.perf_counter()
        model, result = fit(model_config, data, train_config, out / CHECKPOINT, device=device, progress=progress)
        eval_started = running_clock().now()
        valid = evaluate_nll(model, data.valid, n_masks=eval_config.test_masks)
        test_nll = -log_likelihoods(model, data.test, n_masks=eval_config.test_masks)
        test = summarize(test_nll, data.dim, eval_config.test_masks)
        write_array(out / PER_EXAMPLE, test_nll.float().numpy())
        record = RunRecord(
            model_config=model_config, train_config=train_config, test_masks=eval_config.test_masks,
            data=data.fingerprint(), epochs=result.epochs, best_epoch=result.best_epoch, stopped_early=result.stopped_early,
            train_seconds=result.seconds, seconds_per_epoch=result.seconds / max(result.epochs, 1),
            eval_seconds=running_clock().now() - eval_started, wall_seconds_this_call=time.perf_counter() - started,
            valid_nll=valid, test_nll=test, history=result.history, device=device_name(model.output.weight.device),
            float32_matmul_precision=torch.get_float32_matmul_precision(),  # "highest": plain fp32, no TF32
            torch=torch.__version__, machine=f"{platform.machine()} {os.cpu_count()} cpus",
        )  # fmt: skip
        write_model(out / MODEL, asdict(model_config), model.state_dict(), data.fingerprint())
        write_record(record, out / METRICS)
    return model, record


def device_name(device: torch.device) -> str:
    """``cpu``, or ``cuda (<GPU name>)`` so that the cost table says which GPU."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def load_model(run_dir: str | os.PathLike, device: str | None = None, record: RunRecord | None = None) -> MADE:
    """The best model saved in a run folder (read without running any code from the file); with the run's
    ``record``, a ``model.pt`` of another architecture or data set than the record says is refused."""
    path = Path(run_dir) / MODEL
    saved = read_model(path)
    try:
        model = MADE(config_from_dict(MADEConfig, saved["config"]))
        model.load_state_dict(saved["state"])
    except (ReplicationError, TypeError, RuntimeError, AttributeError) as exc:
        reason = first_line(exc)
        raise ReplicationError(f"{path} does not hold a valid MADE ({reason}); train again") from None
    if record is not None and (model.config != record.model_config or saved["data"].get("sha256") != record.data.get("sha256")):
        raise ReplicationError(
            f"{path} does not belong to this run: its architecture or data differ from {Path(run_dir) / METRICS}; train again"
        )
    return model.to(resolve_device(device) if device else torch.device("cpu"))


def load_metrics(run_dir: str | os.PathLike) -> RunRecord:
    """The record of a finished run folder (one-line errors for a missing, unreadable or malformed file)."""
    path = Path(run_dir) / METRICS
    if not Path(run_dir).exists():
        raise ReplicationError(f"{run_dir} does not exist; give the folder a run was trained into (train --out)")
    if not Path(run_dir).is_dir():
        raise ReplicationError(f"{run_dir} is a file, not a run folder; give the folder a run was trained into (train --out)")
    if not path.is_file():
        raise ReplicationError(f"{path} not found: the run in {run_dir} has not finished (train into it first)")
    return read_record(path)
