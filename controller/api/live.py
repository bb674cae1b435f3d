"""``/api/v1/live``: live broadcasting (phát trực tiếp) — sessions, the microphone WebSocket, Icecast's
listener check, the record of every session and its recording. Protocol and formats: docs/live.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket, status
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect, WebSocketState

from controller.accounts.auth import user_for_token
from controller.accounts.reach import wards_of
from controller.accounts.scope import OutOfScope
from controller.api.deps import (
    SESSION_COOKIE,
    LiveSessionsDep,
    OfficerDep,
    SessionDep,
    StaffDep,
    csrf_for,
    require_roles,
)
from controller.api.errors import AUTHENTICATED, errors
from controller.api.views import LivePublic, live_public
from controller.broadcasts.live.active import ActiveSession, LiveError
from controller.broadcasts.live.sessions import (
    LiveInvalid,
    LiveSessionNotFound,
    LiveStart,
    LiveStillOnAir,
    NoRecording,
    NotYourSession,
)
from controller.broadcasts.live.source import PCM_SAMPLE_BYTES
from controller.storage.models import User

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"], responses=AUTHENTICATED)

#: Largest audio frame the WebSocket takes (about 340 ms of 48 kHz mono PCM); more closes it (1009).
MAX_FRAME_BYTES = 32 * 1024
#: The first message (the bearer token) must come within this long.
AUTH_TIMEOUT_S = 5.0
_LIVE_ROLES = frozenset({"officer", "approver", "admin"})

ApproverDep = Annotated[User, Depends(require_roles("approver"))]


class LiveAvailability(BaseModel):
    """Whether a session could go live now, and if not why."""

    available: bool
    error: str | None = None


@router.get("/api/v1/live/status", response_model=LiveAvailability)
async def live_status(live: LiveSessionsDep, _user: OfficerDep) -> LiveAvailability:
    """Whether Icecast answers: the console says so before the officer tries to go live."""
    problem = await live.availability()
    return LiveAvailability(available=problem is None, error=problem)


@router.post("/api/v1/live/sessions", response_model=LivePublic, status_code=status.HTTP_201_CREATED,
             responses=errors(404, 409, 503, e404="(to a caller of several wards) an agent or zone not the ward's",
                              e409="some of the speakers are live with someone else's session (holder: whose)",
                              e503="live broadcasting is not set up or Icecast is not reachable"))
async def start_session(body: LiveStart, live: LiveSessionsDep, user: OfficerDep,
                        session: SessionDep) -> LivePublic | JSONResponse:
    """Creates a session: a relay goes live at once, a microphone once its WebSocket sends audio."""
    try:
        session_id = await live.start(body, user)
    except LiveInvalid as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except OutOfScope as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LiveError as exc:
        content: dict[str, Any] = {"detail": exc.message}
        if exc.holder is not None:
            content["holder"] = exc.holder
        return JSONResponse(content, status_code=exc.status)
    return live_public(live.get(session, session_id))


@router.get("/api/v1/live/sessions", response_model=list[LivePublic])
def list_sessions(session: SessionDep, live: LiveSessionsDep, user: StaffDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[LivePublic]:
    """The record of the caller's wards' live sessions, newest first (the live part of the reports)."""
    return [live_public(r) for r in live.recent(session, limit, wards_of(session, user))]


@router.get("/api/v1/live/sessions/{session_id}", responses=errors(404), response_model=LivePublic)
def get_session(session_id: str, session: SessionDep, live: LiveSessionsDep, user: StaffDep) -> LivePublic:
    """One session (of the caller's wards) with the proof of play of every agent it reached."""
    try:
        row = live.get(session, session_id, wards_of(session, user))
    except LiveSessionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return live_public(row, live.plays(session, row))


@router.post("/api/v1/live/sessions/{session_id}/end", responses=errors(404), response_model=LivePublic)
async def end_session(session_id: str, live: LiveSessionsDep, user: OfficerDep) -> LivePublic:
    """Ends a session (its owner, or an admin)."""
    try:
        return live_public(await live.end(session_id, user))
    except NotYourSession as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except LiveSessionNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.get("/api/v1/live/sessions/{session_id}/recording", responses=errors(404, 409))
def recording(session_id: str, live: LiveSessionsDep, session: SessionDep, user: ApproverDep) -> FileResponse:
    """The session's Opus recording (approvers and admins of its ward)."""
    try:
        path = live.recording_path(session, session_id, user)
    except (LiveSessionNotFound, NoRecording) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except LiveStillOnAir as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return FileResponse(path, media_type="audio/ogg", filename=f"live-{session_id}.ogg")


@router.post("/api/v1/live/icecast-auth", include_in_schema=False)
async def icecast_auth(request: Request, live: LiveSessionsDep) -> Response:
    """Icecast's URL authentication (``listener_add``): a listener needs the live session's token."""
    body = await request.body()
    fields = urllib.parse.parse_qs(body.decode("utf-8", errors="replace")[:8192])
    action = fields.get("action", [""])[0]
    mount = fields.get("mount", [""])[0]
    where = mount.partition("?")[0][:100]
    # Icecast says where the listener connects from: with one token per agent, a token used from an
    # unexpected address names the agent whose token leaked.
    ip = fields.get("ip", [""])[0][:64]
    agent = live.hub.listener_agent(mount) if action == "listener_add" else None
    if agent is not None:
        log.info("icecast listener on %s admitted: agent %s from %s", where, agent, ip or "?")
        return Response(status_code=200, headers={"icecast-auth-user": "1"})
    log.info("icecast listener refused on %s (from %s)", where, ip or "?")
    return Response(status_code=200, headers={"icecast-auth-message": "not a valid live session token"})


# ------------------------------------------------------------------------------------------ WebSocket


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state != WebSocketState.DISCONNECTED and ws.client_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await ws.close(code, reason[:120])


def _user_for(controller: Any, token: str) -> tuple[int, str, frozenset[str]] | None:
    with controller.db.session() as session:
        user = user_for_token(session, token)
        return None if user is None else (user.id, user.username, user.role_set)


async def _authenticate(ws: WebSocket, controller: Any, session_id: str) -> ActiveSession | None:
    """The first message names the caller; the session must be theirs and not yet connected."""
    try:
        first = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await _close(ws, 1008, "no token within 5 s")
        return None
    text = first.get("text")
    try:
        message = json.loads(text) if text else None
    except ValueError:
        message = None
    token = message.get("token") if isinstance(message, dict) else None
    if isinstance(message, dict) and isinstance(message.get("csrf"), str):
        # The console's page: its HttpOnly session cookie came with the handshake. Like a POST made with
        # that cookie, it must prove it is our page: the CSRF token only our pages can read, sent from
        # our own origin (a cross-site page could open the socket, never read the token).
        cookie = ws.cookies.get(SESSION_COOKIE, "")
        host = ws.headers.get("host", "")
        same_origin = bool(host) and urllib.parse.urlsplit(ws.headers.get("origin", "")).netloc == host
        if cookie and same_origin and hmac.compare_digest(message["csrf"].encode(), csrf_for(cookie).encode()):
            token = cookie
    if not isinstance(token, str) or not token or len(token) > 200:
        await _close(ws, 1008, 'first message must be {"token": "..."} (or the console\'s {"csrf": "..."})')
        return None
    who = await asyncio.to_thread(_user_for, controller, token)
    if who is None or not who[2] & _LIVE_ROLES:
        await _close(ws, 1008, "not allowed to broadcast live")
        return None
    sess: ActiveSession | None = controller.live.get(session_id)
    if sess is None or sess.owner_id != who[0]:
        await _close(ws, 1008, "no such live session of yours")
        return None
    if sess.connected or sess.source != "microphone":
        await _close(ws, 1008, "this session already has its audio")
        return None
    return sess


@router.websocket("/api/v1/live/sessions/{session_id}/audio")
async def audio_socket(ws: WebSocket, session_id: str) -> None:
    """The microphone: a token message, then binary PCM frames (s16le, 48 kHz, mono); ``{"end": true}`` ends."""
    controller = ws.app.state.controller
    await ws.accept()
    sess = await _authenticate(ws, controller, session_id)
    if sess is None:
        return
    hub = controller.live
    sess.connected = True
    sess.last_audio = time.monotonic()
    if not await hub.start_source(sess):
        await _close(ws, 1011, sess.end_reason)
        return
    # The silence clock starts once the encoder can take audio: starting ffmpeg on a busy machine must
    # not count as the browser falling silent (its frames wait in the socket meanwhile).
    sess.last_audio = time.monotonic()
    sess.tasks.append(asyncio.create_task(hub.announce(sess), name=f"live-announce-{sess.id}"))

    async def report_live() -> None:
        # Tell the page once the agents have been told (or why it failed).
        waits = [asyncio.ensure_future(sess.on_air.wait()), asyncio.ensure_future(sess.ended.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            if sess.on_air.is_set() and not sess.ended.is_set():
                await ws.send_text(json.dumps({"status": "live", "targets": sorted(sess.targets)}))

    reporter = asyncio.create_task(report_live())
    ended = asyncio.create_task(sess.ended.wait())
    reason, code = "browser disconnected", 1000
    try:
        while True:
            receive = asyncio.create_task(ws.receive())
            done, _ = await asyncio.wait({receive, ended}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                await asyncio.gather(receive, return_exceptions=True)
                break
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                if _is_end(message.get("text")):
                    reason = "ended by the officer"
                else:
                    reason, code = "unexpected text frame", 1003
                break
            if len(data) > MAX_FRAME_BYTES:
                reason, code = f"audio frame over {MAX_FRAME_BYTES} bytes", 1009
                break
            if len(data) % PCM_SAMPLE_BYTES:
                reason, code = "audio frame is not whole 16-bit samples", 1003
                break
            if not await hub.feed(sess, data):
                break
    finally:
        reporter.cancel()
        ended.cancel()
        # Ended by the hub (stream failed, timed out, taken down by an admin): its reason stands.
        await hub.end(sess, reason, failed=code != 1000)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await ws.send_text(json.dumps({"status": "ended", "reason": sess.end_reason}))
        await _close(ws, code, sess.end_reason)


def _is_end(text: str | None) -> bool:
    try:
        return bool(text) and json.loads(text or "").get("end") is True
    except (ValueError, AttributeError):
        return False
