"""What staff send about signs: content (pages), a board attached to an agent, and sign items with targets."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, model_validator

from devices.led.content import SignPage
from devices.protocol import ID_PATTERN, Priority

#: Longest one occurrence of a sign item may stay up (a standing notice for a year).
MAX_ITEM_DURATION_MS: Final = 366 * 24 * 3_600_000
#: Stored pages (JSON) read back as models.
PAGES: TypeAdapter[list[SignPage]] = TypeAdapter(list[SignPage])

SignId = Annotated[str, Field(pattern=ID_PATTERN)]
#: A ward's unit id (lower-case letters, digits, ``_`` and ``-``).
WardId = Annotated[str, Field(pattern=ID_PATTERN, max_length=63,
                              description="the ward this belongs to; needed only by staff of several wards")]
#: A sign's id: ``{agent id}.{sign name}``.
FullSignId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*$", max_length=63)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignContentInput(_Input):
    """What an officer composes: a title and pages (text or uploaded images)."""

    title: str = Field(default="", max_length=200)
    pages: list[SignPage] = Field(min_length=1, max_length=50)
    ward: WardId | None = None


class SignAttach(_Input):
    """A technician attaches a board to an agent: ``name`` is its ``[[signs]]`` name in the agent's config."""

    agent_id: SignId
    name: SignId
    width: int = Field(ge=8, le=1920)
    height: int = Field(ge=7, le=1080)
    description: str = Field(default="", max_length=200)


def _targets_schema(schema: dict[str, Any]) -> None:
    # SignTargets._something's rule, in the API's document: all and no lists, or not all and a list with
    # something in it.
    lists = ("zones", "agents", "signs")
    schema["anyOf"] = [
        {"required": ["all"], "properties": {"all": {"const": True}, **{name: {"maxItems": 0} for name in lists}}},
        *[{"required": [name], "properties": {"all": {"const": False}, name: {"minItems": 1}}} for name in lists]]


class SignTargets(_Input):
    """Which signs show an item: all, the signs of some zones' or agents' agents, or named signs."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_targets_schema)

    all: StrictBool = False
    zones: list[SignId] = Field(default_factory=list, max_length=1000)
    agents: list[SignId] = Field(default_factory=list, max_length=10_000)
    signs: list[FullSignId] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> SignTargets:
        if self.all and (self.zones or self.agents or self.signs):
            raise ValueError("targets: choose either all, or zones/agents/signs, not both")
        if not (self.all or self.zones or self.agents or self.signs):
            raise ValueError("targets must be all, or name at least one zone, agent or sign")
        return self


class SignItemInput(_Input):
    """Content on signs from ``start`` for ``duration_ms``; with ``rrule`` at every recurrence until ``until``."""

    content_id: str = Field(min_length=1, max_length=32)
    title: str = Field(default="", max_length=200)
    priority: Priority = Priority.NORMAL
    targets: SignTargets
    start: datetime
    rrule: str | None = Field(default=None, max_length=500)
    until: datetime | None = None
    duration_ms: int = Field(gt=0, le=MAX_ITEM_DURATION_MS)
    ward: WardId | None = None
