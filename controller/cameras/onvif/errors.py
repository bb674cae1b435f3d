"""What a failed ONVIF operation becomes: a :class:`CameraError` with a reason and a credential-free message.

Anything a camera or a library says is scrubbed of the username, the password and URL user-info
before it is kept in a message (or a log line).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Final, Literal, TypeVar

import aiohttp

from controller.cameras.onvif.soap import ONVIFError, zeep_errors

Reason = Literal["unreachable", "auth", "fault", "malformed", "no_h264", "bad_uri"]
_AUTH_CODES: Final = frozenset({"notauthorized", "failedauthentication", "invalidsecuritytoken",
                                "failedcheck", "securitytokenunavailable", "messageexpired"})
_AUTH_TEXT: Final = re.compile(r"not\s*authori[sz]ed|unauthori[sz]ed|authenticat|sender not auth|password",
                               re.IGNORECASE)


class CameraError(Exception):
    """A camera operation failed; ``reason`` is a short machine-readable cause, the message is for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


#: One sentence per reason for the console (Vietnamese by default, English available); the error's own
#: message adds the detail.
REASON_TEXT: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "unreachable": "Không kết nối được tới camera (sai địa chỉ hoặc cổng, camera tắt, hoặc mạng không thông).",
        "auth": "Camera từ chối tên đăng nhập hoặc mật khẩu.",
        "fault": "Camera báo lỗi khi xử lý yêu cầu ONVIF.",
        "malformed": "Camera trả lời không đúng định dạng ONVIF.",
        "no_h264": "Camera không có luồng video H.264 nào.",
        "bad_uri": "Địa chỉ luồng video của camera không phải RTSP.",
    },
    "en": {
        "unreachable": "Cannot reach the camera (wrong address or port, camera off, or no network path).",
        "auth": "The camera refused the username or password.",
        "fault": "The camera reported an error handling the ONVIF request.",
        "malformed": "The camera's answer is not valid ONVIF.",
        "no_h264": "The camera has no H.264 video stream.",
        "bad_uri": "The camera's video stream address is not RTSP.",
    },
}


def reason_text(reason: str, lang: str = "vi") -> str:
    """The console's sentence for a :class:`CameraError` reason (``vi`` or ``en``)."""
    return REASON_TEXT.get(lang, REASON_TEXT["vi"]).get(reason, reason)


class Scrubber:
    """Scrubs the credentials in play from any text before it goes into a message."""

    def __init__(self, *secrets: str) -> None:
        # Longest first, so a password containing the username is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 2}, key=len, reverse=True)

    def scrub(self, text: str, limit: int = 300) -> str:
        """``text`` without user-info or the credentials, on one line, cut to ``limit`` characters."""
        text = strip_userinfo(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 1] + "…"


def strip_userinfo(text: str) -> str:
    """Removes ``user:pass@`` from every URL in ``text``."""
    return re.sub(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@", r"\1", text)


def redact_uri(uri: str) -> str:
    """``uri`` without user-info, fit for a log line or an error message."""
    return strip_userinfo(uri)


def _fault_is_auth(fault: zeep_errors.Fault) -> bool:
    codes: list[str] = []
    for code in [fault.code, *(fault.subcodes or [])]:
        if code is None:
            continue
        text = getattr(code, "localname", None) or str(code)
        codes.append(text.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower())
    return any(c in _AUTH_CODES for c in codes) or bool(_AUTH_TEXT.search(str(fault.message or "")))


def classify(exc: BaseException, what: str, where: str, secrets: Scrubber) -> CameraError:
    """Turns whatever the SOAP stack raised into a CameraError with a clear, credential-free message."""
    # ONVIFError wraps the real cause; look through it.
    seen: set[int] = set()
    cur: BaseException | None = exc
    while isinstance(cur, ONVIFError) and cur.__cause__ is not None and id(cur) not in seen:
        seen.add(id(cur))
        cur = cur.__cause__
    err: BaseException = cur or exc
    if isinstance(err, CameraError):
        return err
    if isinstance(err, TimeoutError):
        return CameraError("unreachable", f"{what}: {where} did not answer in time")
    if isinstance(err, zeep_errors.Fault):
        if err.code is None and str(err.message) == "Unknown fault occured":
            # zeep's words (sic) for an error status whose body holds no SOAP fault: a web page, not ONVIF.
            return CameraError("malformed", f"{what}: {where} answered an HTTP error with something that is not "
                                            "a SOAP message: not an ONVIF port, or a camera that wants HTTP "
                                            "authentication instead of WS-Security")
        if _fault_is_auth(err):
            return CameraError("auth", f"{what}: {where} refused the username or password")
        return CameraError("fault", f"{what}: {where} answered with a SOAP fault: {secrets.scrub(str(err.message))}")
    if isinstance(err, zeep_errors.TransportError):
        if err.status_code in (401, 403):
            return CameraError("auth", f"{what}: {where} refused the username or password (HTTP {err.status_code})")
        if "invalid XML" in str(err.message):  # zeep's wording when a reply does not parse
            return CameraError("malformed", f"{what}: {where} sent a reply that is not well-formed XML "
                                            f"(HTTP {err.status_code}; is this an ONVIF port?)")
        return CameraError("fault", f"{what}: {where} answered HTTP {err.status_code}")
    if isinstance(err, zeep_errors.XMLSyntaxError | SyntaxError):
        return CameraError("malformed", f"{what}: {where} sent a reply that is not well-formed XML")
    if isinstance(err, zeep_errors.Error | AttributeError | KeyError | TypeError | ValueError):
        return CameraError("malformed", f"{what}: {where} sent a reply that does not follow the ONVIF schema "
                                        f"({type(err).__name__}: {secrets.scrub(str(err), 160)})")
    if isinstance(err, aiohttp.ClientResponseError):
        if err.status in (401, 403):
            return CameraError("auth", f"{what}: {where} refused the username or password (HTTP {err.status})")
        return CameraError("fault", f"{what}: {where} answered HTTP {err.status}")
    if isinstance(err, aiohttp.ClientError | OSError):
        detail = secrets.scrub(str(err) or type(err).__name__, 160)
        return CameraError("unreachable", f"{what}: cannot reach {where} ({detail})")
    if isinstance(err, ONVIFError):
        return CameraError("fault", f"{what}: {where}: {secrets.scrub(str(err))}")
    return CameraError("fault", f"{what}: {where}: unexpected {type(err).__name__}: {secrets.scrub(str(err), 160)}")


_T = TypeVar("_T")


async def guarded(coro: Awaitable[_T], what: str, where: str, secrets: Scrubber, timeout_s: float | None) -> _T:
    """Awaits ``coro`` within ``timeout_s`` (None: the caller's own timeout bounds it), failures mapped."""
    try:
        async with asyncio.timeout(timeout_s):
            return await coro
    except CameraError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise classify(exc, what, where, secrets) from None


@contextmanager
def mapped(what: str, where: str, secrets: Scrubber) -> Iterator[None]:
    """Maps exceptions raised while reading a reply's fields (the reply did not match the schema)."""
    try:
        yield
    except CameraError:
        raise
    except Exception as exc:
        raise classify(exc, what, where, secrets) from None
