"""A live session in memory while it lasts, and what refuses one.

The hub (hub.py) owns these; the API and the console read them (who holds which speakers, the mount).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from controller.broadcasts.live.source import SourceFeeder
from devices.protocol import Priority


class LiveError(Exception):
    """A session that cannot be created or joined; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.holder = holder


@dataclass(eq=False)
class ActiveSession:
    """A session not yet ended, in memory."""

    id: str
    #: Listener token per target agent (Icecast's check answers only for an agent still in the session).
    tokens: dict[str, str]
    priority: Priority
    owner_id: int | None
    owner_name: str
    source: str
    relay_url: str | None
    title: str
    targets: set[str]
    all_targets: set[str]
    feeder: SourceFeeder | None = None
    live: bool = False
    connected: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once the agents have been told to play the mount.
    on_air: asyncio.Event = field(default_factory=asyncio.Event)
    last_audio: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    end_reason: str = ""
    #: Audio bytes taken from the browser (logged at the end: how much was spoken).
    bytes_in: int = 0
    #: Take-overs this session will make once on air: (the other session, the agents it would take).
    planned: list[tuple[ActiveSession, set[str]]] = field(default_factory=list)
    #: Timing trace (bench hook, only with ``LP_LIVE_TRACE``): (first byte, received, written) per frame.
    trace: list[tuple[int, float, float]] | None = None
    #: Wall times of the steps to going on air (written in the bench trace, LP_LIVE_TRACE).
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def mount(self) -> str:
        """The session's Icecast mount."""
        return f"/live-{self.id}.ogg"


def new_session_id() -> str:
    """A session id: short, URL- and topic-safe."""
    return "L" + secrets.token_hex(8)


def new_listener_token() -> str:
    """A listener token for one agent in one session (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)
