"""Files the project writes: atomically (a unique temporary name beside the target, then a rename), never
rewritten when their content is unchanged, and folders locked between processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from .errors import ReplicationError, first_line

UMASK = os.umask(0)
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; when the block succeeds it replaces ``path`` in one rename.

    A crash or a kill leaves either the old file or the new one, never a half-written one, and two writers
    never share a temporary file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise ReplicationError(f"cannot write {path} ({exc.strerror}); choose a writable folder") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~UMASK)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # a full disk, a size limit, a read-only folder (torch.save: RuntimeError)
        raise ReplicationError(f"cannot write {path} ({why_not_written(path, exc)}); {WRITE_REMEDY}") from None
    finally:
        tmp.unlink(missing_ok=True)


WRITE_REMEDY = "the previous file, if any, is unchanged; free some space, raise the limit or choose another folder"


def why_not_written(path: Path, exc: BaseException) -> str:
    """The cause of a failed write, in words: the OS's reason, else what the folder and the process's limits show
    (``torch.save`` reports a full disk or a file-size limit as a RuntimeError without one)."""
    reason = getattr(exc, "strerror", None)
    if reason:
        return reason
    if not os.access(path.parent, os.W_OK):
        return "the folder is read-only"
    free = shutil.disk_usage(path.parent).free
    if free < 64 * 2**20:
        return f"no space left on device ({free // 2**20} MiB free)"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f"file too large: this process may write files of at most {limit} bytes (ulimit -f)"
    return first_line(exc)


def write_bytes(path: str | os.PathLike, content: bytes) -> bool:
    """Write ``content`` atomically unless ``path`` already holds exactly it; return whether it was written."""
    path = Path(path)
    if path.is_file() and path.read_bytes() == content:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return True


def write_text(path: str | os.PathLike, text: str) -> bool:
    """Write ``text`` (UTF-8) atomically unless ``path`` already holds exactly it; return whether it was written."""
    return write_bytes(path, text.encode())


def write_json(obj: Any, path: str | os.PathLike) -> bool:
    """Write ``obj`` as indented, strict JSON (no NaN or infinity; atomically, only when it changed)."""
    try:
        text = json.dumps(obj, indent=2, allow_nan=False)
    except ValueError as exc:
        raise ReplicationError(f"refusing to write {path}: {exc} (a non-finite number is not JSON)") from None
    return write_text(path, text + "\n")


def write_array(path: str | os.PathLike, array: Any) -> None:
    """``numpy.save`` atomically."""
    import numpy as np

    with atomic_path(path, suffix=".tmp.npy") as tmp:
        np.save(tmp, array)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_figure(figure: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (the format from the file's suffix), only when its bytes changed."""
    path, buffer = Path(path), io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    write_bytes(path, buffer.getvalue())
    return path


WAIT_REPORT_SECONDS = 60.0  # a waiting process says so at once, then once a minute


def lock_holder(lock_file: Path) -> str:
    """Who holds a lock, as its holder wrote it beside the lock (``pid N on HOST since TIME``), or "unknown"."""
    try:
        return lock_file.with_name(lock_file.name + ".owner").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def lock_held(lock_file: Path) -> bool:
    """Whether a process holds ``lock_file`` now (one left by a killed process is free); the folder is not changed."""
    if not lock_file.is_file():
        return False
    probe = FileLock(lock_file)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike, what: str, wait: bool) -> Iterator[None]:
    """Hold an inter-process lock on ``lock_file`` for the block: wait for it (saying which lock and who holds it,
    then again every minute), or refuse at once if ``wait`` is false."""
    lock_file = Path(lock_file)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplicationError(f"cannot create {lock_file.parent} ({exc.strerror}); choose a writable folder") from None
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise ReplicationError(
                f"{what} is in use by another process ({lock_holder(lock_file)}; lock {lock_file}); wait for it to finish"
            ) from None
        while True:
            print(f"waiting for {what}: lock {lock_file} is held by {lock_holder(lock_file)}", file=sys.stderr, flush=True)
            try:
                lock.acquire(timeout=WAIT_REPORT_SECONDS)
                break
            except Timeout:
                continue
    owner = lock_file.with_name(lock_file.name + ".owner")
    try:
        owner.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
