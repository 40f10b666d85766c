"""The configuration of a MADE, and the field rules every configuration of the project uses.

A field is declared with :func:`option` (its default, help and rules); :class:`Validated` checks every field after
``__init__`` and raises :class:`~replication.errors.ConfigError` naming the field. The training and evaluation
configurations and the flat recipe built from all three are in ``replication/training/config.py``.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

from ..errors import ConfigError
from .layers import ACTIVATIONS

INITS = ("default", "orthogonal")
MASK_SCHEDULES = ("cycled", "official")


def option(default: Any, help: str, **rules: Any) -> Any:
    """A configuration field: its default, help text and rules (``choices``, ``minimum``, ``below``, ``positive``).

    A field added after results were recorded declares ``absent``: the value that does what runs did before the
    field existed (usually its default). Runs with that value keep their identity (see :func:`identity_recipe`).
    """
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **rules})
    return field(default=default, metadata={"help": help, **rules})


def check_field(f: Field, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` has the field's type and obeys its rules."""
    rules, kind = f.metadata, str(f.type)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        ok = isinstance(value, str)
    else:  # list[int]: hidden layer sizes
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    numbers = value if isinstance(value, list) else [value]
    if ok and "choices" in rules:
        ok = value in rules["choices"]
    if ok and "minimum" in rules:
        ok = all(v >= rules["minimum"] for v in numbers)
    if ok and "below" in rules:
        ok = all(v < rules["below"] for v in numbers)
    if ok and rules.get("positive"):
        ok = all(v > 0 for v in numbers)
    if not ok:
        raise ConfigError(f"{f.name} must be {describe(f)}, got {value!r}")


def describe(f: Field) -> str:
    """What a field accepts, in words (for error messages)."""
    rules, kind = f.metadata, str(f.type)
    if "choices" in rules:
        return "one of " + ", ".join(rules["choices"])
    noun = {"bool": "true or false", "int": "an integer", "float": "a finite number", "str": "a string"}.get(
        kind, "a non-empty list of integers"
    )
    bounds = [f">= {rules['minimum']}"] if "minimum" in rules else []
    bounds += [f"< {rules['below']}"] if "below" in rules else []
    bounds += ["> 0"] if rules.get("positive") else []
    return noun + (" " + " and ".join(bounds) if bounds else "")


class Validated:
    """Checks every field of a configuration dataclass against its rules after ``__init__``."""

    def __post_init__(self) -> None:
        for f in fields(self):
            check_field(f, getattr(self, f.name))


@dataclass
class MADEConfig(Validated):
    """Everything needed to rebuild a MADE (saved in checkpoints)."""

    input_dim: int = field(metadata={"help": "number of binary inputs D (taken from the data set)", "minimum": 2})
    hidden_sizes: list[int] = option([500], "hidden layer sizes, one number per layer", minimum=1)
    direct: bool = option(True, "direct input-to-output connections")
    activation: str = option("relu", "hidden activation", choices=tuple(ACTIVATIONS))
    num_masks: int = option(1, "masks K cycled over minibatches (0 = a new mask every minibatch)", minimum=0)
    order_agnostic: bool = option(False, "resample the input ordering for every mask")
    connectivity_agnostic: bool = option(False, "resample the hidden connectivity for every mask")
    random_ordering: bool = option(False, "a model with a fixed ordering uses one random ordering drawn from the seed")
    dropout: float = option(0.0, "dropout rate on hidden units", minimum=0.0, below=1.0)
    init: str = option("default", "weight initialisation: nn.Linear's default or orthogonal", choices=INITS)
    seed: int = option(0, "seed of masks, orderings, initialisation, shuffling and dropout", minimum=0, below=2**63)
    mask_schedule: str = option(
        "cycled",
        "cycled: K masks 0..K-1 trained in turn, ensembles of the first masks; official: the official trainer's "
        "K+1 masks 0..K trained in turn, ensembles of the masks from 1 on (mask K+1 never trained)",
        choices=MASK_SCHEDULES,
        absent="cycled",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_schedule == "official" and self.num_masks < 2:
            raise ConfigError(f"mask_schedule official needs num_masks >= 2 (a K-mask set), got {self.num_masks}")
