"""LED signs: the retained ``sign.playlist``, the ``sign.status`` event and what a sign shows now."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from devices.led.content import MAX_PAGES, SignPage
from devices.protocol.fields import AgentId, PlayId, Priority, Strict
from devices.protocol.schedule import MAX_WINDOW_PLAYS


class SignNow(Strict):
    """What one LED sign shows at this moment (part of the agent's state)."""

    sign: str = Field(max_length=63)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    #: playlist: an entry of ``sign.playlist``; announcement: the text of what the speaker plays; idle: dark.
    source: Literal["playlist", "announcement", "idle"]
    entry_id: str | None = None
    item_id: str | None = None
    priority: Priority | None = None
    page: int = Field(default=0, ge=0)
    pages: int = Field(default=0, ge=0)
    text: str = Field(default="", max_length=1000)
    since: int
    #: The driver's last fault (null while the sign works).
    fault: str | None = Field(default=None, max_length=300)


class SignPlaylistEntry(Strict):
    """Content for some of an agent's signs from ``start_at`` until ``end_at`` (ms since epoch).

    ``signs`` names signs of this agent (its ``[[signs]]`` names); empty means every sign it has. Among
    the entries live at a moment, a sign shows those of the highest priority, their pages in turn.
    """

    entry_id: PlayId
    item_id: str | None = Field(default=None, max_length=64)
    title: str = Field(default="", max_length=200)
    signs: list[AgentId] = Field(default_factory=list, max_length=64)
    priority: Priority = Priority.NORMAL
    start_at: int
    end_at: int
    pages: list[SignPage] = Field(min_length=1, max_length=MAX_PAGES)


class SignPlaylist(Strict):
    """``sign.playlist`` on ``…/signs`` (retained): every entry for this agent's signs until ``window_end``.

    A newer ``version`` replaces the older playlist whole; the agent keeps showing the last one it
    accepted while the link is down.
    """

    version: int = Field(ge=1)
    window_start: int
    window_end: int
    entries: list[SignPlaylistEntry] = Field(default_factory=list, max_length=MAX_WINDOW_PLAYS)


class SignStatus(Strict):
    """``sign.status``: a sign failed (``ok`` false: port gone, no answer, page refused) or recovered."""

    sign: str = Field(max_length=63)
    ok: bool
    code: str = Field(max_length=64)
    message: str = Field(default="", max_length=1000)
