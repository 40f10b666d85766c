"""The project's user-facing errors: each carries a one-line message saying what and how to fix."""


class ReplicationError(Exception):
    """An error caused by the user's input; the CLI prints it as one line, no traceback."""


class DataError(ReplicationError):
    """A data set is missing, corrupt, or not in the expected schema."""
