"""The training and evaluation configurations, and the recipe: one flat schema over them and the model's.

A *recipe* is a flat mapping whose keys are the field names of ``MADEConfig`` (``model/config.py``), ``TrainConfig``
and ``EvalConfig`` (``seed`` is the model's and also
seeds the training's shuffling and dropout).  ``experiments.toml``, the CLI's options (names, defaults, choices, help) and the
checkpoints all use this schema; the defaults below are the only ones (the official MNIST command).
Every invalid value raises :class:`ConfigError` naming the field.

A run's *identity* (:func:`identity_recipe`) is the one rule of what makes two runs the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, fields
from typing import Any

from ..errors import ConfigError
from ..fields import Validated, at_absent, check_field, describe, option
from ..model.config import MADEConfig
from .optimizers import OPTIMIZERS

MINIBATCH_ORDERS = ("shuffled", "fixed")


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
    minibatch_order: str = option(
        "shuffled",
        "shuffled: a new permutation of the training rows every epoch; fixed: the official trainer's minibatches, "
        "consecutive rows in file order, the same every epoch",
        choices=MINIBATCH_ORDERS,
        absent="shuffled",
    )

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

    return {k: v for k, v in recipe.items() if k in schema and k not in NOT_IN_IDENTITY and not at_absent(schema[k], v)}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A configuration as a recorded dict: every field but those at their ``absent`` value, so that an option added
    later changes no record of a run that does not use it (:func:`config_from_dict` restores them)."""
    return {f.name: getattr(config, f.name) for f in fields(config) if not at_absent(f, getattr(config, f.name))}


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
    model, train, evaluation = (
        build(cls, recipe, **({"input_dim": input_dim} if i == 0 else {})) for i, cls in enumerate(CONFIGS)
    )
    check_ensembles(model, train, evaluation)
    return model, train, evaluation


MAX_ENSEMBLE = 10_000  # masks an ensemble of an unbounded set may average (each costs a pass over the split)


def check_ensembles(model: MADEConfig, train: TrainConfig, evaluation: EvalConfig) -> None:
    """Refuse validation and test ensembles the model cannot form (see :func:`check_ensemble`)."""
    check_ensemble(model, train.valid_masks, "valid_masks")
    check_ensemble(model, evaluation.test_masks, "test_masks")


def check_ensemble(model: MADEConfig, masks: int, name: str) -> None:
    """Refuse an ensemble of more masks than the model has (a mask counted twice is not an ensemble), or, for a new
    mask every minibatch, more than :data:`MAX_ENSEMBLE`.

    >>> check_ensemble(MADEConfig(input_dim=4, num_masks=8), 9, "test_masks")
    Traceback (most recent call last):
    replication.errors.ConfigError: test_masks must be at most the 8 mask(s) that num_masks 8 (cycled schedule) scores, got 9
    """
    if model.num_masks == 0:
        have, what = MAX_ENSEMBLE, f"at most {MAX_ENSEMBLE} for a new mask every minibatch"
    else:
        have = model.num_masks + (1 if model.mask_schedule == "official" else 0)
        what = f"at most the {have} mask(s) that num_masks {model.num_masks} ({model.mask_schedule} schedule) scores"
    if masks > have:
        raise ConfigError(f"{name} must be {what}, got {masks}")


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
            kwargs["type"] = field_parser(f)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag, **kwargs)


def field_parser(f: Field) -> Callable[[str], Any]:
    """An argparse type for a scalar field: its text converted and checked by the field's rules, so a command line
    is held to the same rule as a recipe (every command that takes a seed uses the ``seed`` field's).

    >>> field_parser(recipe_fields()["seed"])("7")
    7
    """
    convert = {"int": int, "float": float, "str": str}[str(f.type)]

    def parse(text: str) -> Any:
        try:
            value = convert(text)
            check_field(f, value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{f.name} must be {describe(f)}, got {text!r}") from None
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parse


def recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe given on the command line (every field, defaults included)."""
    return {name: getattr(args, name) for name in recipe_fields()}
