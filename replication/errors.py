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
