"""The field rules every configuration of the project uses (the model's, training's, evaluation's).

A field is declared with :func:`option` (its default, help and rules); :class:`Validated` checks every field after
``__init__`` and raises :class:`~replication.errors.ConfigError` naming the field.

>>> from dataclasses import dataclass
>>> @dataclass
... class Speed(Validated):
...     lr: float = option(0.01, "learning rate", positive=True)
>>> Speed(lr=-1.0)
Traceback (most recent call last):
replication.errors.ConfigError: lr must be a finite number > 0, got -1.0
"""

from __future__ import annotations

import math
from dataclasses import Field, field, fields
from typing import Any

from .errors import ConfigError


def option(default: Any, help: str, **rules: Any) -> Any:
    """A configuration field: its default, help text and rules (``choices``, ``minimum``, ``below``, ``positive``).

    ``absent`` (optional) is the value that does what runs did before the field existed: the identity rule of
    ``training/config.py`` leaves a run at that value unchanged.
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


def at_absent(f: Field, value: Any) -> bool:
    """Whether ``value`` is the field's ``absent`` value: what runs did before the field existed."""
    return "absent" in f.metadata and value == f.metadata["absent"]
