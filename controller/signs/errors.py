"""What the sign service refuses with: bad input (naming the field), something unknown, a role not allowed."""

from __future__ import annotations


class SignInputError(ValueError):
    """Bad input; ``field`` names the body field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SignNotFound(LookupError):
    """No such sign, content or item."""


class SignForbidden(PermissionError):
    """The caller's role does not allow this."""
