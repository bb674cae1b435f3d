"""``/console/events``: one Server-Sent Events stream per open page, saying what changed.

Events carry no data a page could not fetch itself: the name of what changed (``fleet``, ``plays`` …,
see controller/storage/change_feed.py) and a counter. Pages listen with htmx's SSE extension
(``hx-trigger="sse:fleet"``) and fetch their fragment again, through the usual role checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from controller.api.deps import ChangesDep
from controller.storage.change_feed import KINDS, ChangeFeed
from controller.web.session import ConsoleUserDep

router = APIRouter(prefix="/console", include_in_schema=False)

#: How often the counters are read; a change reaches the page within this.
POLL_SECONDS = 0.5
#: A comment line this often keeps proxies and the browser from calling the stream dead.
HEARTBEAT_SECONDS = 15.0
#: The stream ends after this; the browser reconnects by itself (EventSource), and a server shutting
#: down never waits long for an open page.
MAX_STREAM_SECONDS = 300.0


async def _stream(request: Request, feed: ChangeFeed, kinds: list[str]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    started = last_beat = loop.time()
    seen = feed.versions()
    yield b"retry: 3000\n\n"
    while loop.time() - started < MAX_STREAM_SECONDS:
        await asyncio.sleep(POLL_SECONDS)
        if await request.is_disconnected():
            return
        now = feed.versions()
        for kind in ChangeFeed.changed(seen, now, kinds):
            yield f"event: {kind}\ndata: {now[kind]}\n\n".encode()
        seen = now
        if loop.time() - last_beat >= HEARTBEAT_SECONDS:
            last_beat = loop.time()
            yield b": keep-alive\n\n"


@router.get("/events")
async def events(request: Request, changes: ChangesDep, _user: ConsoleUserDep,
                 kinds: str = Query("", max_length=200, description="comma-separated; empty: all"),
                 ) -> StreamingResponse:
    """What changed, as it changes (``text/event-stream``)."""
    wanted = [k for k in (p.strip() for p in kinds.split(",")) if k in KINDS] or list(KINDS)
    return StreamingResponse(_stream(request, changes, wanted), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
