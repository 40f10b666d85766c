"""Progress of a training run: one line updated in place in a terminal; a few dozen plain lines elsewhere
(papermill notebooks, logs).  No total is shown: early stopping decides when a run ends."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def worth_a_line(epoch: int) -> bool:
    """Epochs that get a line when the output is not a terminal: powers of two, then every 100th epoch."""
    return epoch & (epoch - 1) == 0 or epoch % 100 == 0


class EpochLog:
    """Reports each finished epoch; ``enabled=False`` says nothing."""

    def __init__(self, enabled: bool, first_epoch: int) -> None:
        self.enabled, self.interactive = enabled, sys.stderr.isatty()
        self.bar = tqdm(initial=first_epoch, unit="epoch", dynamic_ncols=True) if enabled and self.interactive else None
        if enabled and first_epoch and not self.interactive:
            print(f"resuming after epoch {first_epoch}", file=sys.stderr, flush=True)

    def epoch(self, epoch: int, train_nll: float, valid_nll: float, best: dict[str, Any], seconds: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(train=f"{train_nll:.2f}", valid=f"{valid_nll:.2f}",
                                 best=f"{best['valid_nll']:.2f}@{best['epoch']}", refresh=False)  # fmt: skip
            self.bar.update(1)
        elif self.enabled and worth_a_line(epoch):
            print(f"epoch {epoch}: train {train_nll:.2f}, valid {valid_nll:.2f}, best {best['valid_nll']:.2f} at epoch "
                  f"{best['epoch']} ({seconds:.1f} s/epoch)", file=sys.stderr, flush=True)  # fmt: skip

    def close(self, epoch: int, best: dict[str, Any], why: str) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            print(f"stopped after epoch {epoch} ({why}); best validation NLL {best['valid_nll']:.2f} at epoch {best['epoch']}",
                  file=sys.stderr, flush=True)  # fmt: skip
