"""The priority rules a speaker follows when plays collide (the agent imports this module).

TT39's three levels are normal < priority < emergency. A play pre-empts the one on the speaker only when
its level is strictly higher; an equal level waits its turn (the controller's conflict check warns the
officer about those when scheduling).

What happens to the play that was cut off:

- a **relay** (live stream of an upper-level station) rejoins the stream where it is now, if its relay
  window is still open once the speaker is free — the missed part is gone, as on a radio;
- a **recording or announcement** is played again **from the beginning** once the speaker is free, as long
  as it can still start before its deadline (the command's expiry) — half a message is worse than none;
- otherwise (window closed, deadline passed) it is **skipped**, and the agent reports it as not played.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from devices.protocol import Priority


def preempts(new: Priority, current: Priority) -> bool:
    """True when a play of level ``new`` interrupts one of level ``current`` (strictly higher only)."""
    return new.rank > current.rank


class AfterPreemption(StrEnum):
    """What becomes of a pre-empted play once the speaker is free again."""

    RESTART = "restart"  # a recording starts over from the beginning
    REJOIN = "rejoin"  # a relay picks the live stream up where it is now
    SKIP = "skip"  # too late: not played


def after_preemption(kind: Literal["media", "relay"], resumable_until_ms: int, now_ms: int) -> AfterPreemption:
    """What to do with a pre-empted play of ``kind`` when the speaker is free at ``now_ms``.

    ``resumable_until_ms`` is the end of a relay's window, or a recording's deadline (its command's
    expiry); at or after it the play is skipped.
    """
    if now_ms >= resumable_until_ms:
        return AfterPreemption.SKIP
    return AfterPreemption.REJOIN if kind == "relay" else AfterPreemption.RESTART
