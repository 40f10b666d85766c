"""The configuration of a MADE: its architecture, its masks and their schedule, its initialisation and seed.

Fields follow the project's rules (``replication/fields.py``); the training and evaluation configurations and the
flat recipe built from all three are in ``replication/training/config.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..fields import Validated, option
from .layers import ACTIVATIONS

INITS = ("default", "orthogonal")


def single_mask(num_masks: int) -> bool:
    """Whether ``num_masks`` means one mask for good (0 means a new mask for every minibatch).

    >>> single_mask(1), single_mask(32), single_mask(0)
    (True, False, False)
    """
    return num_masks == 1


MASK_SCHEDULES = ("cycled", "official")


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

    @property
    def single_mask(self) -> bool:
        return single_mask(self.num_masks)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_schedule == "official" and self.num_masks < 2:
            raise ConfigError(f"mask_schedule official needs num_masks >= 2 (a K-mask set), got {self.num_masks}")
