"""The request-body guard: every body is held to its limit however it is sent, before anything parses it."""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.media import UPLOAD_PATH
from controller.web.errors import error_page, is_console

log = logging.getLogger(__name__)

#: Largest request body the API reads (announcement text is far smaller; uploads get their own limit).
MAX_BODY_BYTES = 1024 * 1024
#: Sent with every refusal for size: the client may still be sending, and reading the rest of its body
#: only to throw it away (what a kept-alive connection needs) is work an attacker would choose for us.
_CLOSE = (b"connection", b"close")


def _too_large_detail(scope: Scope, limit: int) -> str:
    if scope["path"] == UPLOAD_PATH:
        return f"recordings are limited to {limit // 2**20} MB"
    if is_console(Request(scope)):
        return f"{limit // 1024} KiB"  # the console's page already says what happened
    return f"request body over {limit} bytes"


def _too_large_response(scope: Scope, limit: int) -> Response:
    """The 413 itself: the console's page (or htmx fragment) for console paths, JSON for the API."""
    request = Request(scope)
    headers = {"Connection": "close"}
    if is_console(request):
        return error_page(request, 413, _too_large_detail(scope, limit), headers=headers)
    return JSONResponse({"detail": _too_large_detail(scope, limit)}, status_code=413, headers=headers)


class _BodyStopped(Exception):
    """The body passed its limit after the response had started: too late for a 413, so the app is stopped."""


class _CountedBody:
    """One request's ``receive`` and ``send``, counting the body's bytes as they arrive.

    Past the limit, ``receive`` raises instead of returning the chunk: while nothing has been sent, an
    ``HTTPException(413)`` that the app's own handlers turn into the usual answer (FastAPI re-raises
    HTTP exceptions met while reading a body); once the response has started, :class:`_BodyStopped`,
    which no handler claims and :class:`BodyLimit` swallows. Either way the rest is never read.
    """

    __slots__ = ("_receive", "_send", "count", "limit", "over", "replaced", "scope", "started")

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.count = 0
        self.over = False
        self.started = False
        self.replaced = False

    def _refusal(self) -> Exception:
        if self.started:
            return _BodyStopped()
        return HTTPException(413, _too_large_detail(self.scope, self.limit), headers={"Connection": "close"})

    async def receive(self) -> Message:
        """The next message from the server, unless the body has gone past the limit."""
        if self.over:
            raise self._refusal()
        message = await self._receive()
        if message["type"] == "http.request":
            self.count += len(message.get("body", b""))
            if self.count > self.limit:
                self.over = True
                log.warning("%s %s from %s: body passed %d bytes; refused without reading the rest",
                            self.scope["method"], self.scope["path"], _client(self.scope), self.limit)
                raise self._refusal()
        return message

    async def send(self, message: Message) -> None:
        """Passes the app's response on; after an overflow, makes sure it is a 413 that closes the connection."""
        if self.replaced:
            return  # our own 413 went out instead of the app's answer: the rest of that answer is dropped
        if message["type"] == "http.response.start" and not self.started:
            if self.over:
                if message["status"] != 413:
                    # Code that caught the refusal broadly (``except Exception``) answered something else.
                    self.replaced = True
                    self.started = True
                    await _too_large_response(self.scope, self.limit)(self.scope, self._receive, self._send)
                    return
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    message = {**message, "headers": [*headers, _CLOSE]}
            self.started = True
        await self._send(message)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


class BodyLimit:
    """Holds every request body to :data:`MAX_BODY_BYTES` (recordings at ``UPLOAD_PATH``: ``upload_limit``).

    A declared ``Content-Length`` over the limit is refused before anything is read; any body, chunked
    or not, is counted as it arrives and refused with 413 the moment it passes the limit, before a route
    (or FastAPI, which reads a JSON body whole before it checks who is calling) holds more than the limit
    in memory.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper pipes every chunk of a streaming
    response through a memory stream, a cost paid per frame per viewer of a live camera view.
    """

    def __init__(self, app: ASGIApp, upload_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] == UPLOAD_PATH else MAX_BODY_BYTES
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            log.info("%s %s from %s: declared body of %s bytes refused (limit %d)", scope["method"], scope["path"],
                     _client(scope), length[:20], limit)
            await _too_large_response(scope, limit)(scope, receive, send)
            return
        body = _CountedBody(scope, receive, send, limit)
        try:
            await self.app(scope, body.receive, body.send)
        except* _BodyStopped:
            # The server closes the connection: the response was cut short, which is all that is left to say.
            log.warning("%s %s from %s: response cut short, the body passed %d bytes after it had started",
                        scope["method"], scope["path"], _client(scope), limit)
