"""Where a model trains: the device named by the user (checked), and whether the model fits in its memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from pathlib import Path

import torch

from ..errors import ConfigError, TrainingError
from .config import MADEConfig, TrainConfig
from .optimizers import OPTIMIZERS


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``name`` as a device (default: cuda when available, else cpu); a clear error for one that does not exist here."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {name!r} is not a device ({exc}); use cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported; use cpu or cuda")
    return device


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse instead of handing them back to the system.

    By default each block over 32 MiB, and any block once the heap's free top passes a threshold, goes back to the
    system when freed, so the next step's gradient of the same size comes as fresh pages: a page fault and a
    kernel zeroing for every 4 KiB, some 50 MB a step at 1x8000 (about 5-20% of a CPU step, and most of its
    variance). Process-wide; the process keeps its peak memory. Returns whether it applied (glibc only).
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 2**30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc
        return False


def parameter_count(config: MADEConfig) -> int:
    sizes = [config.input_dim, *config.hidden_sizes, config.input_dim]
    weights = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    return weights + (config.input_dim**2 if config.direct else 0)


def training_parts(config: MADEConfig, train: TrainConfig) -> dict[str, int]:
    """A generous estimate of the memory needed to train, by cause: the weights (parameters, gradients, optimizer
    state, the best parameters, a masked copy when masks change) and the activations of a batch."""
    copies = 4 + OPTIMIZERS[train.optimizer].states + (0 if config.num_masks == 1 else 1)
    rows = max(train.batch_size, 1000)  # evaluation runs in batches of 1000
    return {
        f"the weights of hidden_sizes {config.hidden_sizes} over {config.input_dim} inputs": 4 * parameter_count(config) * copies,
        f"the activations of batch_size {train.batch_size} over {config.input_dim} inputs": 4
        * rows
        * (sum(config.hidden_sizes) + 3 * config.input_dim),
    }


def training_bytes(config: MADEConfig, train: TrainConfig) -> int:
    return sum(training_parts(config, train).values())


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's free memory, or the system's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(config: MADEConfig, train: TrainConfig, device: torch.device) -> None:
    """Refuse, before allocating anything, a model that cannot be trained in ``device``'s memory."""
    parts = training_parts(config, train)
    need, have = sum(parts.values()), available_bytes(device)
    if need > have:
        cause = max(parts, key=parts.get)
        raise TrainingError(
            f"training needs about {need / 2**30:.1f} GiB on {device}, mostly for {cause}, but only "
            f"{have / 2**30:.1f} GiB is available; make that smaller"
        )
