"""The argument types every command line of the project shares: one rule for paths, counts and seeds.

>>> nonblank_path("runs"), int_at_least(1)("4"), SEED("1234")
(PosixPath('runs'), 4, 1234)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import ReplicationError
from .training.config import field_parser, recipe_fields


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def nonblank_path(text: str) -> Path:
    """An argparse type: a path that is not empty or blank (``Path("")`` would silently be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a path, got an empty one")
    return Path(text)


def nonblank(text: str) -> str:
    """An argparse type: text that is not empty or blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


SEED = field_parser(recipe_fields()["seed"])  # the one seed rule: that of the recipe's field


def exit_status(work: Callable[[], int | None], interrupted: str | None = None) -> int:
    """Run a command's work: its status (0 when it returns none), or 2 with ``error: ...`` on one line for a
    :class:`ReplicationError`, or 130 with ``interrupted`` for Ctrl-C when the command says what to do then."""
    try:
        return work() or 0
    except ReplicationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(interrupted, file=sys.stderr)
        return 130
