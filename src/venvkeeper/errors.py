"""One error hierarchy. A problem with one venv is a finding, never an exception;
these are for problems with the run itself (bad usage, an unusable root, an internal failure)."""

from __future__ import annotations


class VenvkeeperError(Exception):
    """Base of every error venvkeeper raises on purpose. The message says what to do."""


class UsageError(VenvkeeperError):
    """The command line or its arguments are wrong."""


class CommandError(VenvkeeperError):
    """A subprocess failed; carries the command and what it printed."""

    def __init__(self, message: str, argv: list[str], stderr: str = "") -> None:
        super().__init__(message)
        self.argv = argv
        self.stderr = stderr


class InventoryError(VenvkeeperError):
    """The inventory database cannot be used: corrupt, written by a newer venvkeeper, not a
    venvkeeper inventory, or not writable. The file is always left as it was."""


class InventoryUnavailable(InventoryError):
    """The inventory cannot be created or opened for an OS reason (permission, a
    read-only filesystem): nothing is wrong with its contents."""


class ConfigError(UsageError):
    """A configuration file is unreadable or invalid; every problem names its file and line."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)
