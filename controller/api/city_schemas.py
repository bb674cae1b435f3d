"""Bodies and answers of the city's broadcasts: an item or announcement for chosen wards (or all of them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.api.schedule_schemas import ScheduleItemCreate, ScheduleItemPublic
from controller.api.schemas import AnnouncementCreate, text_or_recording
from devices.protocol import ID_PATTERN

WardsIn = Annotated[
    Annotated[list[Annotated[str, Field(pattern=ID_PATTERN, max_length=63)]], Field(min_length=1, max_length=1000)]
    | Literal["all"],
    Field(description='the wards it goes to (unit ids, at least one), or "all": every ward under the units '
                      "where the sender holds the role. An unknown ward, or one outside the sender's units, is "
                      "refused with 422 naming it",
          examples=[["binh-phu", "an-lac"], "all"])]


def _no_single_ward(ward: str | None) -> None:
    if ward is not None:
        raise ValueError('an item for several wards names them in "wards", not "ward"')


def _no_ward_field(schema: dict[str, Any]) -> None:
    # _no_single_ward's rule, in the document: "ward" may only be null.
    schema["properties"]["ward"] = {"type": "null", "description": 'not used: name the wards in "wards"'}


def _city_announcement_schema(schema: dict[str, Any]) -> None:
    text_or_recording(schema)
    _no_ward_field(schema)


def _some_wards(wards: list[str] | str) -> None:
    if isinstance(wards, list) and not 1 <= len(wards) <= 1000:
        raise ValueError("wards should have at least 1 entry and at most 1000")


class CityItemCreate(ScheduleItemCreate):
    """A schedule item for chosen wards (or all): each ward gets its own part, marked as coming from above.

    Targets: ``{"all": true}`` is every speaker of each ward; zones and agents must each lie in one of the
    chosen wards, and each ward must be given some. ``ward`` is not used.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_ward_field)

    wards: WardsIn

    @model_validator(mode="after")
    def _wards_only(self) -> CityItemCreate:
        _no_single_ward(self.ward)
        _some_wards(self.wards)
        return self


class CityAnnouncementCreate(AnnouncementCreate):
    """An announcement for chosen wards (or all), now or at a time: one announcement per ward.

    An emergency goes out at once in every chosen ward; one of normal priority waits in a ward that approves
    the city's items itself, until that ward's approver approves it. ``ward`` is not used.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_city_announcement_schema)

    wards: WardsIn

    @model_validator(mode="after")
    def _wards_only(self) -> CityAnnouncementCreate:
        _no_single_ward(self.ward)
        _some_wards(self.wards)
        return self


class CityItemPublic(BaseModel):
    """A city item and each ward's part of it."""

    id: str
    unit: str = Field(description="the city or province it comes from")
    wards: list[str]
    all_wards: bool = Field(description='sent to "all" (the wards under the sender\'s units then)')
    title: str
    priority: str
    status: str = Field(description="active, or cancelled (every part with it)")
    revision: int
    created_by: str | None
    created_at: datetime
    items: list[ScheduleItemPublic] = Field(description="each ward's part (an item of that ward), cancelled "
                                                        "ones too")


class CityPartPublic(BaseModel):
    """One ward's announcement of a city announcement."""

    ward: str
    announcement_id: str
    status: str = Field(description="rendering, sent, …; pending while the ward's approver has not approved it")
    targets: list[str]


class CityAnnouncementPublic(BaseModel):
    """A city announcement: one announcement per chosen ward."""

    id: str
    unit: str
    wards: list[str]
    all_wards: bool
    priority: str
    created_at: datetime
    announcements: list[CityPartPublic]
