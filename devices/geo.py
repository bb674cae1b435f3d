"""A place on the map: WGS 84 latitude and longitude in degrees, as the controller's API, its console and the
board profiles (a default location for every Pi of one installation) all spell them.

A location is a pair or nothing: one coordinate alone is refused, since a speaker on the equator or on the
Greenwich meridian by accident is worse than one listed as "no location yet".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _not_a_boolean(value: object) -> object:
    # pydantic's lax mode reads true as 1.0: a JSON boolean is no coordinate (the API's document says number).
    if isinstance(value, bool):
        raise ValueError("a coordinate is a number, not true or false")
    return value


#: Degrees north (negative: south), -90…90.
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False,
                                  description="latitude in degrees (WGS 84), -90 to 90; e.g. 10.7769"),
                     BeforeValidator(_not_a_boolean)]
#: Degrees east (negative: west), -180…180.
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False,
                                   description="longitude in degrees (WGS 84), -180 to 180; e.g. 106.7009"),
                      BeforeValidator(_not_a_boolean)]

#: What a half-given location is told.
PAIR_NEEDED = "give both lat and lon, or neither"


class Location(BaseModel):
    """A point: both coordinates, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: Latitude
    lon: Longitude


def pair_problem(lat: float | None, lon: float | None) -> str | None:
    """Why ``lat``/``lon`` do not make a location or its absence (None when they do)."""
    if (lat is None) != (lon is None):
        return PAIR_NEEDED
    return None


def pair_json_schema(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a model with :class:`LocationPair`: its rule in the model's JSON schema (both
    numbers, or both absent or null)."""
    schema.setdefault("allOf", []).append({"anyOf": [
        {"required": ["lat", "lon"], "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                                    "lon": {"type": "number", "minimum": -180, "maximum": 180}}},
        {"properties": {"lat": {"type": "null"}, "lon": {"type": "null"}}}]})


def change_json_schema(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a model with :class:`LocationChange`: as :func:`pair_json_schema`, and one of
    the two is never given without the other."""
    pair_json_schema(schema)
    schema["dependentRequired"] = {"lat": ["lon"], "lon": ["lat"]}


class LocationPair:
    """Mixin for a pydantic model that declares ``lat: Latitude | None`` and ``lon: Longitude | None``: refuses
    one without the other. The model declares the two fields itself, where they belong in its field order."""

    if TYPE_CHECKING:  # the model's own; annotated at run time, pydantic would make them fields of the mixin
        lat: float | None
        lon: float | None

        @property
        def model_fields_set(self) -> set[str]: ...

    def _refuse_half_pair(self) -> None:
        problem = pair_problem(self.lat, self.lon)
        if problem:
            raise ValueError(problem)

    @model_validator(mode="after")
    def _location_pair(self) -> Self:
        self._refuse_half_pair()
        return self


class LocationChange(LocationPair):
    """:class:`LocationPair` for a change: both absent leaves the location as it is, both null clears it, and
    one given alone is refused before its value is looked at."""

    @model_validator(mode="after")
    def _location_pair(self) -> Self:
        if ({"lat", "lon"} & self.model_fields_set) and not {"lat", "lon"} <= self.model_fields_set:
            raise ValueError("give both lat and lon (numbers to set the location, null to clear it)")
        self._refuse_half_pair()
        return self
