"""What every payload is built from: the strict model base, priorities, the id field types and the clock."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from devices.protocol.topics import ID_PATTERN

AgentId = Annotated[str, Field(pattern=ID_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: Play ids: a command's id, or ``{item}-{revision}-{start ms}`` for a scheduled occurrence.
PlayId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch, the unit of every timestamp."""
    return time.time_ns() // 1_000_000


class Strict(BaseModel):
    """Every payload model: unknown fields are refused (adding one is a breaking change), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Priority(StrEnum):
    """TT39's three levels; a higher one pre-empts a lower one on the same speaker."""

    NORMAL = "normal"
    PRIORITY = "priority"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        """Ordering key: normal 0 < priority 1 < emergency 2."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.NORMAL: 0, Priority.PRIORITY: 1, Priority.EMERGENCY: 2}
