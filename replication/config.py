"""The one configuration schema: model, training and evaluation dataclasses, and what is derived from them.

A *recipe* is a flat mapping whose keys are these dataclasses' field names (``seed`` is the model's and also
seeds the training's shuffling and dropout).  ``experiments.toml``, the CLI's options (names, defaults, choices, help) and the
checkpoints all use this schema; the defaults below are the only ones (the official MNIST command).
Every invalid value raises :class:`ConfigError` naming the field.

A run's *identity* (:func:`identity_recipe`) is the one rule of what makes two runs the same.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .layers import ACTIVATIONS
from .optimizers import OPTIMIZERS

INITS = ("default", "orthogonal")


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


@dataclass
class TrainConfig(Validated):
    """Optimisation recipe.  Defaults follow the official MNIST command (Adagrad 0.01, batch 100, look-ahead 30)."""

    optimizer: str = option(
        "adagrad", "optimizer (adagrad_official: the official code's rule, lr*g/sqrt(G+1e-6))", choices=tuple(OPTIMIZERS)
    )
    lr: float = option(0.01, "learning rate", positive=True)
    weight_decay: float = option(0.0, "L2 penalty", minimum=0.0)
    batch_size: int = option(100, "minibatch size", minimum=1)
    patience: int = option(30, "early-stopping look-ahead: epochs without a better validation NLL", minimum=1)
    max_epochs: int = option(1000, "epoch cap, a guard far above where early stopping ends a run", minimum=1)
    valid_masks: int = option(1, "masks in the validation ensemble used for early stopping", minimum=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_decay and not OPTIMIZERS[self.optimizer].weight_decay:
            raise ConfigError(f"weight_decay must be 0 with optimizer {self.optimizer} (the official rule has none)")


@dataclass
class EvalConfig(Validated):
    """How a trained model is scored."""

    test_masks: int = option(1, "masks in the test ensemble (probabilities averaged)", minimum=1)


CONFIGS = (MADEConfig, TrainConfig, EvalConfig)
NOT_IN_RECIPES = {"input_dim"}  # taken from the data
NOT_IN_IDENTITY = {"max_epochs"}  # a raised epoch cap continues the same run


def recipe_fields() -> dict[str, Field]:
    """Every recipe key and its field."""
    return {f.name: f for cls in CONFIGS for f in fields(cls) if f.name not in NOT_IN_RECIPES}


def identity_recipe(recipe: Mapping[str, Any], schema: Mapping[str, Field] | None = None) -> dict[str, Any]:
    """What of a recipe makes a run what it is; the one rule. Every field counts except ``max_epochs`` (a raised cap
    continues the same run) and a field at its ``absent`` value (an option added later, set to what runs did before
    it existed): adding such an option leaves every finished run and checkpoint current, while a changed value or a
    changed default (which changes recipes) makes a run stale. A field missing from ``recipe`` counts as absent."""
    schema = recipe_fields() if schema is None else schema

    def counts(name: str) -> bool:
        absent = schema[name].metadata.get("absent", MISSING)
        return name not in NOT_IN_IDENTITY and (absent is MISSING or recipe[name] != absent)

    return {k: v for k, v in recipe.items() if k in schema and counts(k)}


def config_from_dict(cls: type, saved: Mapping[str, Any], **extra: Any) -> Any:
    """A configuration from a recorded dict (a checkpoint's, a ``metrics.json``'s): a field added since takes its
    ``absent`` value, a key of another configuration (the ``seed`` that older train configs repeated) is dropped."""
    known = {f.name: f for f in fields(cls)}
    values = {k: v for k, v in saved.items() if k in known}
    for name, f in known.items():
        if name not in values and name not in extra and "absent" in f.metadata:
            values[name] = f.metadata["absent"]
    try:
        return cls(**values, **extra)
    except TypeError as exc:
        raise ConfigError(f"a recorded {cls.__name__} is incomplete ({exc})") from None


def default_of(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def default_recipe() -> dict[str, Any]:
    """The library's defaults, as a recipe."""
    return {name: default_of(f) for name, f in recipe_fields().items()}


def check_recipe_keys(keys: Any, where: str) -> None:
    """Refuse keys that are not configuration fields (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(keys) - set(recipe_fields()))
    if unknown:
        raise ConfigError(f"{where} has unknown fields {unknown}; known fields: {', '.join(recipe_fields())}")


def build(cls: type, recipe: dict[str, Any], **extra: Any) -> Any:
    """An instance of configuration class ``cls`` from the recipe's values of its fields (plus ``extra``)."""
    return cls(**{f.name: recipe[f.name] for f in fields(cls) if f.name in recipe}, **extra)


def configs_from_recipe(recipe: dict[str, Any], input_dim: int) -> tuple[MADEConfig, TrainConfig, EvalConfig]:
    """The three configurations of a recipe, for data of dimension ``input_dim``."""
    check_recipe_keys(recipe, "recipe")
    model, train, evaluation = CONFIGS
    return build(model, recipe, input_dim=input_dim), build(train, recipe), build(evaluation, recipe)


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One command-line option per recipe field, with the field's default, choices and help."""
    group = parser.add_argument_group("recipe (the fields of experiments.toml)")
    for name, f in recipe_fields().items():
        kind, flag = str(f.type), "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": name, "default": default_of(f), "help": f.metadata["help"] + " (default: %(default)s)"}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind == "list[int]":
            kwargs.update(type=int, nargs="+", metavar="N")
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}[kind]
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag, **kwargs)


def recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe given on the command line (every field, defaults included)."""
    return {name: getattr(args, name) for name in recipe_fields()}
