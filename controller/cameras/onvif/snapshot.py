"""Fetching a camera's snapshot over HTTP (digest auth, or basic when the camera asks for it)."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Final

import aiohttp

from controller.cameras.onvif.errors import CameraError, Scrubber, classify, strip_userinfo
from controller.cameras.onvif.session import valid_scheme

#: Largest snapshot accepted; a camera that sends more is refused rather than buffered.
MAX_SNAPSHOT_BYTES: Final = 8 * 1024 * 1024
SNAPSHOT_TYPES: Final = ("image/jpeg", "image/jpg", "image/png")


async def fetch_snapshot(uri: str, username: str, password: str, *, timeout_s: float = 5,
                         max_bytes: int = MAX_SNAPSHOT_BYTES) -> bytes:
    """GETs a camera snapshot (HTTP digest auth, or basic when the camera asks for basic).

    The answer must be an image (JPEG or PNG, by Content-Type) no larger than ``max_bytes``.
    """
    secrets = Scrubber(username, password)
    if not valid_scheme(uri, ("http", "https")):
        raise CameraError("bad_uri", f"snapshot URI {secrets.scrub(uri, 120)!r} is not an http(s) URL")
    shown = secrets.scrub(uri, 200)
    # user-info in the URI is moved into the auth exchange rather than sent as-is.
    parts = urllib.parse.urlsplit(uri)
    user = username or urllib.parse.unquote(parts.username or "")
    pw = password or urllib.parse.unquote(parts.password or "")
    secrets = Scrubber(user, pw)
    clean = strip_userinfo(uri)
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(clean, user, pw, max_bytes, shown)
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise classify(exc, "fetching a snapshot", shown, secrets) from None


async def _fetch(uri: str, user: str, pw: str, max_bytes: int, shown: str) -> bytes:
    timeout = aiohttp.ClientTimeout(total=None)  # bounded by the caller's asyncio.timeout
    middlewares = (aiohttp.DigestAuthMiddleware(user, pw),) if user else ()
    async with (aiohttp.ClientSession(timeout=timeout, middlewares=middlewares) as session,
                session.get(uri, allow_redirects=False) as resp):
        if not (resp.status == 401 and user
                and resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")):
            return await _read_image(resp, max_bytes, shown)
    # The camera asked for basic auth (it offered no digest): answer that, once.
    headers = {"Authorization": aiohttp.encode_basic_auth(user, pw)}
    async with (aiohttp.ClientSession(timeout=timeout) as basic,
                basic.get(uri, headers=headers, allow_redirects=False) as again):
        return await _read_image(again, max_bytes, shown)


async def _read_image(resp: aiohttp.ClientResponse, max_bytes: int, shown: str) -> bytes:
    if resp.status in (401, 403):
        raise CameraError("auth", f"fetching a snapshot: {shown} refused the username or password "
                                  f"(HTTP {resp.status})")
    if resp.status != 200:
        raise CameraError("fault", f"fetching a snapshot: {shown} answered HTTP {resp.status}")
    ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if ctype not in SNAPSHOT_TYPES:
        raise CameraError("malformed", f"fetching a snapshot: {shown} sent {ctype or 'no content type'}, "
                                       f"not a JPEG or PNG image")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise CameraError("malformed", f"fetching a snapshot: {shown} announced {resp.content_length} bytes, "
                                       f"more than the {max_bytes} allowed")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise CameraError("malformed", f"fetching a snapshot: {shown} sent more than {max_bytes} bytes")
    if not body:
        raise CameraError("malformed", f"fetching a snapshot: {shown} sent an empty image")
    return bytes(body)
