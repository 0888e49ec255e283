"""Exceptions raised by invbench.

Every error a user can cause derives from :class:`InvbenchError`; the CLI prints its
message as one line plus the ``hint`` (what to do next) instead of a traceback.
"""

from __future__ import annotations


class InvbenchError(Exception):
    """Base class of all errors meant for the user.

    Args:
        message: One-line statement of what went wrong.
        hint: What the user can do about it (shown on a second line by the CLI).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UnknownComponentError(InvbenchError, KeyError):
    """A component name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class DuplicateComponentError(InvbenchError):
    """Two plugins registered the same component name in one family."""


class PluginContractError(InvbenchError):
    """A plugin registered something that breaks the component contract."""


class OptionsError(InvbenchError):
    """Component options that do not validate."""


class IncompatibleComponentsError(InvbenchError):
    """Components that cannot be combined in one run.

    For example a white-box loss on an encoder without a differentiable path.
    """


class UnreadableImageError(InvbenchError):
    """A dataset image that cannot be read (corrupt, empty, truncated).

    Datasets raise it from ``__getitem__``; the runner counts the image as a failure to
    acquire, names it in the record, and goes on.

    Args:
        message: What went wrong, naming the file.
        key: The sample's key.
        identity: The sample's identity label.
    """

    def __init__(self, message: str, *, key: str, identity: str) -> None:
        super().__init__(message)
        self.key = key
        self.identity = identity


class StorageError(InvbenchError):
    """A file that cannot be written: no space left, no permission, a read-only disk."""


class ContractError(InvbenchError):
    """A component whose output breaks its declared contract (shape, dtype, range)."""


class AssetError(InvbenchError):
    """A pinned asset (weights, data) that cannot be had or does not verify."""


class RecordError(InvbenchError):
    """A result record that does not validate against the schema."""
