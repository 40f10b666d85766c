"""The one configuration schema: model, training and evaluation dataclasses, and what is derived from them.

A *recipe* is a flat mapping whose keys are these dataclasses' field names (``seed`` feeds both the model
and the training).  ``experiments.toml``, the CLI's options (names, defaults, choices, help) and the
checkpoints all use this schema; the defaults below are the only ones (the official MNIST command).
Every invalid value raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from .errors import ConfigError

ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("default", "orthogonal")
OPTIMIZERS = ("adagrad", "adam", "sgd")


def option(default: Any, help: str, **rules: Any) -> Any:
    """A configuration field: its default, help text and rules (``choices``, ``minimum``, ``below``, ``positive``)."""
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
    activation: str = option("relu", "hidden activation", choices=ACTIVATIONS)
    num_masks: int = option(1, "masks K cycled over minibatches (0 = a new mask every minibatch)", minimum=0)
    order_agnostic: bool = option(False, "resample the input ordering for every mask")
    connectivity_agnostic: bool = option(False, "resample the hidden connectivity for every mask")
    random_ordering: bool = option(False, "a model with a fixed ordering uses one random ordering drawn from the seed")
    dropout: float = option(0.0, "dropout rate on hidden units", minimum=0.0, below=1.0)
    init: str = option("default", "weight initialisation: nn.Linear's default or orthogonal", choices=INITS)
    seed: int = option(0, "seed of masks, orderings, initialisation, shuffling and dropout", minimum=0)


@dataclass
class TrainConfig(Validated):
    """Optimisation recipe.  Defaults follow the official MNIST command (Adagrad 0.01, batch 100, look-ahead 30)."""

    optimizer: str = option("adagrad", "optimizer", choices=OPTIMIZERS)
    lr: float = option(0.01, "learning rate", positive=True)
    weight_decay: float = option(0.0, "L2 penalty", minimum=0.0)
    batch_size: int = option(100, "minibatch size", minimum=1)
    patience: int = option(30, "early-stopping look-ahead: epochs without a better validation NLL", minimum=1)
    max_epochs: int = option(1000, "epoch cap, a guard far above where early stopping ends a run", minimum=1)
    valid_masks: int = option(1, "masks in the validation ensemble used for early stopping", minimum=1)
    seed: int = option(0, "seed of masks, orderings, initialisation, shuffling and dropout", minimum=0)


@dataclass
class EvalConfig(Validated):
    """How a trained model is scored."""

    test_masks: int = option(1, "masks in the test ensemble (probabilities averaged)", minimum=1)


CONFIGS = (MADEConfig, TrainConfig, EvalConfig)
NOT_IN_RECIPES = {"input_dim"}  # taken from the data


def recipe_fields() -> dict[str, Field]:
    """Every recipe key and its field (``seed`` once: it is shared by the model and the training)."""
    return {f.name: f for cls in CONFIGS for f in fields(cls) if f.name not in NOT_IN_RECIPES}


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
    return build(MADEConfig, recipe, input_dim=input_dim), build(TrainConfig, recipe), build(EvalConfig, recipe)


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
