"""The project's user-facing errors: each carries a one-line message saying what and how to fix."""


class ReplicationError(Exception):
    """An error caused by the user's input; the CLI prints it as one line, no traceback."""


class ConfigError(ReplicationError, ValueError):
    """A configuration value (recipe field, CLI option) is invalid: the one error type for bad configuration."""


class DataError(ReplicationError):
    """A data set is missing, corrupt, or not in the expected schema."""


class CheckpointError(ReplicationError):
    """A checkpoint or model file is unreadable, foreign, or from another configuration or data set."""


class TrainingError(ReplicationError):
    """Training cannot go on: the loss became non-finite, or the model cannot fit in memory."""


class NotFinished(ReplicationError):
    """A notebook that only reads a finished result found none: it computes nothing and names the command that does.
    Jupyter shows it as its one line, not a stack:

    >>> NotFinished("x: no finished result in results; train it with `make replicate ONLY=x`")._render_traceback_()
    ['x: no finished result in results; train it with `make replicate ONLY=x`']
    """

    def _render_traceback_(self) -> list[str]:
        """What IPython prints for this error (instead of a traceback): its message."""
        return [str(self)]


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's first line (its type's name when it has no message), at most ``limit`` characters: how a
    library's error is quoted inside one of ours.

    >>> first_line(ValueError("bad shape\\nmore detail")), first_line(KeyError())
    ('bad shape', 'KeyError')
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
