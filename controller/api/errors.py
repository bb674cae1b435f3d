"""The API's error answers as its OpenAPI document states them, in one place.

Every error body is ``{"detail": ...}``. Two shapes of ``detail`` are in use, each documented exactly
for the statuses that send it:

* a request the document's own schema refuses (a missing field, a wrong type, a value out of range) is a
  422 whose ``detail`` is a list of ``{type, loc, msg}`` (controller/api/validation.py writes it);
* everything else — an unknown id, a role that may not, a rule beyond the schema (a ward to name, a time
  in the past) — says why in a sentence: ``detail`` is a string. A 422 is therefore either shape.

A few refusals that clients act on by reason carry ``{"reason", "message"}`` instead of a sentence
(:func:`reasoned`): the camera registry's 422 and 502, enrolment's 403. Routers take the statuses every route of theirs
can answer (:data:`AUTHENTICATED`), routes add their own with :func:`errors`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """An error in a sentence."""

    model_config = ConfigDict(title="Error")

    detail: str = Field(description="what went wrong, for a person to read")


class ValidationIssue(BaseModel):
    """One thing the request's schema refused: where, what kind, and a message (never the value itself)."""

    type: str = Field(description="pydantic's error type, e.g. missing, string_too_short")
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field's path")
    msg: str


class Reason(BaseModel):
    """A refusal a client acts on by its reason code."""

    reason: str = Field(description="a stable code, e.g. expired, wrong_code, unreachable")
    message: str


class UnprocessableBody(BaseModel):
    """A 422: the schema's refusals as a list, or a rule beyond the schema in a sentence (or, where a route
    says so, a reason code and a message)."""

    model_config = ConfigDict(title="Unprocessable")

    detail: list[ValidationIssue] | Reason | str


class ReasonedBody(BaseModel):
    """An error whose detail is a reason code and a message, or (from the layers below) a sentence."""

    model_config = ConfigDict(title="ReasonedError")

    detail: Reason | str


#: Each status the API answers with an error, what it means here and its body.
ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8 JSON)."},
    401: {"model": ErrorBody, "description": "No valid bearer token or session cookie."},
    403: {"model": ErrorBody, "description": "The caller's roles do not allow this here."},
    404: {"model": ErrorBody, "description": "No such id among the things the caller may see (a ward outside the "
                                             "caller's reach reads the same)."},
    409: {"model": ErrorBody, "description": "It clashes with what exists or is under way."},
    413: {"model": ErrorBody, "description": "The request body is over the limit."},
    415: {"model": ErrorBody, "description": "The uploaded file's type is not one this accepts."},
    422: {"model": UnprocessableBody,
          "description": "The request breaks the schema (detail: a list of {type, loc, msg}) or a rule beyond it "
                         "(detail: a sentence; from the camera registry, {reason, message})."},
    429: {"model": ErrorBody, "description": "Too many attempts; wait as Retry-After says."},
    502: {"model": ReasonedBody, "description": "The device behind this answered badly or not at all."},
    503: {"model": ErrorBody, "description": "A service this needs (the broker, a speech engine, a camera) is "
                                             "not available now; try again later."},
    504: {"model": ErrorBody, "description": "The device did not answer in time."},
}


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers for ``codes``, for a route's or a router's ``responses=``.

    ``described`` overrides a status's description where a route means something narrower, keyed
    ``e409="..."``.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry = dict(ERROR_RESPONSES[code])
        if f"e{code}" in described:
            entry["description"] = described[f"e{code}"]
        out[code] = entry
    return out


def reasoned(code: int, description: str) -> dict[int | str, dict[str, Any]]:
    """A status whose ``detail`` is ``{reason, message}`` (or a sentence), for ``responses=``."""
    return {code: {"model": ReasonedBody, "description": description}}


#: What every route behind the bearer token can answer: no token, a role that may not, a body over the
#: limit (the body guard holds every method to it), a body that is not text, and the schema's refusals.
AUTHENTICATED: dict[int | str, dict[str, Any]] = errors(400, 401, 403, 413, 422)
