"""Query parameter types whose schema says all they accept."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

# pydantic also reads a bare number as seconds since 1970 ("0.5"); the document says date-time, so a
# number is refused rather than read as a moment in January 1970.
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]")


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("give a date and time in ISO 8601 (RFC 3339), e.g. 2026-03-01T08:00:00+07:00")
    return value


#: A date-time query parameter: RFC 3339 text only, as its ``format: date-time`` says.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]

#: A month as the reports take it: YYYY-MM from the year 2000 (what ``Month.parse`` accepts, no more).
MONTH_PATTERN = r"^[2-9][0-9]{3}-(0[1-9]|1[0-2])$"
