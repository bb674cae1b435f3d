"""The one exception of the schedule model, naming the body field at fault.

It lives apart from the models so that the RRULE helpers, which the models call while validating,
can raise it without importing the models.
"""

from __future__ import annotations

from pydantic import ValidationError


class ScheduleError(ValueError):
    """A schedule that cannot be accepted; ``field`` names the request body field at fault.

    The API layer turns it into a 422 naming ``field``. It subclasses ``ValueError`` so that, raised inside
    a pydantic validator, it becomes an ordinary validation error located at that validator's field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ScheduleError:
        """The first error of a model's ``ValidationError`` as a ``ScheduleError``.

        ``field`` is the dotted location (``"rrule"``, ``"segments.0.relay.url"``; ``""`` for the whole body),
        and the message drops pydantic's ``"Value error, "`` prefix that our own checks would otherwise carry.
        """
        errors = exc.errors()
        if not errors:
            return cls("", str(exc))
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        return cls(field, message)
