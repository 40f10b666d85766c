"""The typed record of a finished training run, as stored in a run folder's ``metrics.json``.

Every field typed, checked when read (a malformed file is reported with its path and the field), written back in
the same key order. It also reads like the JSON it is stored as (``record["test_nll"]``, ``"test_nll" in record``).
What the plan says of an experiment (its name, paper number, figures) is the study's
(``replication/experiment_record.py``), which extends this record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ReplicationError
from ..files import write_json
from ..model.config import MADEConfig
from .config import TrainConfig, config_from_dict, config_to_dict
from .evaluate import NLL

REMEDY = "delete it and train that run again"
Record = TypeVar("Record", bound="RunRecord")


@dataclass(frozen=True)
class RunRecord:
    """What a finished training run measured."""

    model_config: MADEConfig
    train_config: TrainConfig
    test_masks: int
    data: dict[str, Any]  # the data set's fingerprint (name, SHA-256, dimension, split sizes)
    epochs: int
    best_epoch: int
    stopped_early: bool
    train_seconds: float
    seconds_per_epoch: float
    eval_seconds: float
    wall_seconds_this_call: float
    valid_nll: NLL
    test_nll: NLL
    history: list[dict[str, float]]
    device: str
    float32_matmul_precision: str | None = None  # not recorded by the earliest runs
    torch: str = ""
    machine: str = ""

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.__dataclass_fields__ and getattr(self, key) is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: every field that is set, in declaration order."""
        return {f.name: to_json(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def replace(self: Record, **changes: Any) -> Record:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls: type[Record], raw: Any, where: str | Path) -> Record:
        """Check and convert a ``metrics.json`` object; a malformed one raises a one-line error naming ``where``."""
        if not isinstance(raw, dict):
            raise ReplicationError(f"{where} is not a metrics record (a JSON object); {REMEDY}")
        values = {}
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name not in raw:
                if f.default is MISSING:
                    raise ReplicationError(f"{where} lacks the field {f.name!r}; {REMEDY}")
                continue
            try:
                values[f.name] = convert(raw[f.name], hints[f.name])
            except (TypeError, ValueError, ReplicationError) as exc:
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise ReplicationError(f"{where}: field {f.name!r} is malformed ({reason}); {REMEDY}") from None
        return cls(**values)


def to_json(value: Any) -> Any:
    if isinstance(value, (MADEConfig, TrainConfig)):
        return config_to_dict(value)
    return asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


SIMPLE = {int: int, float: (int, float), str: str, bool: bool}


def convert(value: Any, hint: Any) -> Any:
    """``value`` as type ``hint`` (a configuration, an NLL, a paper reference, or plain JSON), or TypeError."""
    if hint is MADEConfig:
        return config_from_dict(MADEConfig, expect(value, dict))
    if hint is TrainConfig:
        return config_from_dict(TrainConfig, expect(value, dict))
    if dataclasses.is_dataclass(hint):  # a record's part: the NLL, and the study's paper reference and figures
        inner = typing.get_type_hints(hint)
        return hint(**{name: convert(expect(value, dict).get(name), kind) for name, kind in inner.items()})
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else convert(value, options[0])
    if origin is not None:  # dict[...] or list[...]
        return expect(value, origin)
    if hint is bool:
        return expect(value, bool)
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, SIMPLE[hint]):
            raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
        if hint is float and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return hint(value)
    return expect(value, hint)


def expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def read_record(path: str | Path, kind: type[Record] = RunRecord) -> Record:
    """The record (of class ``kind``) in ``path``: missing, unreadable or malformed files are one-line errors naming
    it."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReplicationError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise ReplicationError(f"{path} is not readable JSON ({str(exc).splitlines()[0][:120]})") from None
    return kind.from_dict(raw, path)


def write_record(record: RunRecord, path: str | Path) -> bool:
    """Write ``record`` as strict JSON (no NaN or infinity), atomically, only when it changed."""
    return write_json(record.to_dict(), path)
