"""Where a model trains: the device named by the user (checked), and whether the model fits in its memory."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import resource
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


EVAL_BATCH = 1000  # rows evaluation runs at once
# float32 tensors of a training step per row: each hidden unit's pre-activation, activation, dropout mask and gradient;
# each input's batch copy, logits, per-input loss, its gradient and the optimizer's temporaries
ACTIVATION_COPIES_HIDDEN, ACTIVATION_COPIES_INPUT = 4, 8


def training_parts(config: MADEConfig, train: TrainConfig, rows: int | None = None) -> dict[str, int]:
    """A generous estimate of the memory needed to train, by cause: the hidden and output weights, the direct
    connections (each with gradients, optimizer state, the best parameters, a masked copy when masks change) and the
    activations of a batch, capped at ``rows`` (the largest split: no batch holds more)."""
    copies = 4 + OPTIMIZERS[train.optimizer].states + (0 if config.single_mask else 1)
    direct = config.input_dim**2 if config.direct else 0
    batch = max(train.batch_size, EVAL_BATCH) if rows is None else min(max(train.batch_size, EVAL_BATCH), rows)
    shown = train.batch_size if rows is None or train.batch_size <= rows else f"{train.batch_size} (capped at {rows} rows)"
    return {
        f"the weights of hidden_sizes {config.hidden_sizes} over {config.input_dim} inputs":
            4 * (parameter_count(config) - direct) * copies,
        f"the direct connections of {config.input_dim} inputs ({config.input_dim}^2 weights; --no-direct drops them)":
            4 * direct * copies,
        f"the activations of batch_size {shown} over {config.input_dim} inputs":
            4 * batch * (ACTIVATION_COPIES_HIDDEN * sum(config.hidden_sizes) + ACTIVATION_COPIES_INPUT * config.input_dim),
    }  # fmt: skip


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


def address_space_left() -> int | None:
    """Bytes this process may still map under its address-space limit (``ulimit -v``), or None without one."""
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    status = Path("/proc/self/status")
    used = 0
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    return max(limit - used, 0)


def usable_bytes(device: torch.device) -> int:
    """Memory this process can really use on ``device``: the device's free memory, and on CPU no more than what the
    process's address-space limit leaves."""
    have = available_bytes(device)
    left = address_space_left() if device.type == "cpu" else None
    return have if left is None else min(have, left)


def memory_words(device: torch.device) -> str:
    """Where the usable memory's bound comes from, for messages."""
    left = address_space_left() if device.type == "cpu" else None
    if left is not None and left < available_bytes(device):
        return f"{left / 2**30:.1f} GiB is left under this process's address-space limit (ulimit -v)"
    return f"{available_bytes(device) / 2**30:.1f} GiB is available"


def check_fits(config: MADEConfig, train: TrainConfig, device: torch.device, rows: int | None = None) -> None:
    """Refuse, before allocating anything, a model that cannot be trained in the memory this process may use on
    ``device``, naming the largest part (``rows``: the largest split's, which caps a batch)."""
    parts = training_parts(config, train, rows)
    need, have = sum(parts.values()), usable_bytes(device)
    if need > have:
        cause = max(parts, key=parts.get)
        raise TrainingError(
            f"training needs about {need / 2**30:.1f} GiB on {device}, mostly for {cause}, but only "
            f"{memory_words(device)}; make that smaller"
        )
