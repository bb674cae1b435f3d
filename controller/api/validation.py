"""The API's 422 answer: what was wrong and where, never the input itself.

FastAPI's own answer repeats every rejected value (``input``): a camera password sent in a bad request,
or a whole megabyte body handed back to whoever sent it, several times over for a list of bad items.
This one keeps each error's ``type``, ``loc`` and ``msg`` (what clients and the console read), cut to a
bounded size, and drops ``input`` and ``ctx`` (whose values pydantic already spells out in ``msg``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import status
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

#: Errors listed in one answer; a list of thousands of bad items is summed up after these.
MAX_ERRORS = 50
#: Longest message kept (a validator's message may quote the value it refused).
MAX_MSG_CHARS = 300
#: Longest name kept in a location (names in ``loc`` can be the caller's own keys).
MAX_LOC_PART_CHARS = 64
#: Deepest location kept.
MAX_LOC_PARTS = 16


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def public_error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as the API shows it: type, location and message, each bounded; no input."""
    loc = [part if isinstance(part, int) else _cut(str(part), MAX_LOC_PART_CHARS)
           for part in list(error.get("loc", ()))[:MAX_LOC_PARTS]]
    return {"type": _cut(str(error.get("type", "")), MAX_LOC_PART_CHARS), "loc": loc,
            "msg": _cut(str(error.get("msg", "")), MAX_MSG_CHARS)}


def public_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first :data:`MAX_ERRORS` errors, and one line saying how many more there were."""
    shown = [public_error(e) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append({"type": "too_many_errors", "loc": [],
                      "msg": f"{len(errors) - MAX_ERRORS} more errors not listed"})
    return shown


async def validation_errors(request: Request, exc: Exception) -> Response:
    """422 for a request the API's models refused, for every API route (the console has its own page)."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = public_error(errors[0]) if errors else {}
    log.info("%s %s: 422, %d validation error(s), first %s at %s", request.method, request.url.path, len(errors),
             first.get("type"), ".".join(str(p) for p in first.get("loc", ())))
    return JSONResponse({"detail": public_errors(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
