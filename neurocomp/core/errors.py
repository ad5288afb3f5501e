"""The two kinds of failure a user can meet, and the exit code each one gets."""


class UsageError(Exception):
    """Bad input (a name, a key, a file, a device): one line for the user, exit code 2."""

    exit_code = 2


class RunFailed(Exception):
    """A run that started but could not finish (e.g. the loss became NaN): exit code 1."""

    exit_code = 1


def one_line_warnings() -> None:
    """Show warnings as ``warning: message`` lines (no file, line number or source echo)."""
    import warnings

    warnings.formatwarning = lambda message, category, filename, lineno, line=None: f"warning: {message}\n"
