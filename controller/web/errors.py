"""What the console shows when something goes wrong: a page (or an htmx fragment) in the user's
language, never a stack trace. API paths keep their JSON errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from controller.accounts.reach import NotInReach, OutsideRole, WardNeeded
from controller.web.i18n import N_
from controller.web.session import CsrfRejected, LoginRequired, RoleRequired
from controller.web.templating import ROLE_LABELS, render

log = logging.getLogger(__name__)

CONSOLE_PREFIX = "/console"

#: A title and an explanation for each status the console may answer with (msgids).
_STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: (N_("Bad request"), N_("The request could not be understood.")),
    401: (N_("Please sign in"), N_("Your session has ended. Sign in again to continue.")),
    403: (N_("Not allowed"), N_("Your account does not have permission for this.")),
    404: (N_("Not found"), N_("There is no such page or item. It may have been deleted.")),
    405: (N_("Not allowed"), N_("This action is not available here.")),
    409: (N_("Conflict"), N_("This clashes with something that already exists or is in progress.")),
    413: (N_("Too large"), N_("What you sent is larger than allowed.")),
    422: (N_("Check what you entered"), N_("Some values are missing or not valid.")),
    429: (N_("Too many attempts"), N_("Please wait a little and try again.")),
    500: (N_("Something went wrong"), N_("The error has been logged. Please try again; if it happens again, "
                                          "tell your administrator.")),
    503: (N_("Not available"), N_("A service this needs is not running. Try again later or tell your "
                                  "administrator.")),
}


#: What the unit scope's refusals answer, on the API and in the console alike (controller/accounts/reach.py).
_REACH_STATUS: dict[type[Exception], int] = {NotInReach: 404, OutsideRole: 403, WardNeeded: 422}


def is_console(request: Request) -> bool:
    """Whether the request is for one of the console's pages."""
    return request.url.path == CONSOLE_PREFIX or request.url.path.startswith(CONSOLE_PREFIX + "/")


def error_page(request: Request, status_code: int, detail: str | None = None,
               headers: dict[str, str] | None = None, roles: frozenset[str] | None = None) -> Response:
    """The error page, or for htmx the same message as a fragment placed in the page's message area."""
    title, explanation = _STATUS_TEXT.get(status_code, _STATUS_TEXT[500 if status_code >= 500 else 400])
    htmx = request.headers.get("HX-Request") == "true"
    all_headers = dict(headers or {})
    if htmx:
        # htmx swaps error responses only where app.js lets it: into the page's message area.
        all_headers.update({"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})
    return render(request, "error.html" if not htmx else "_error_fragment.html",
                  {"status": status_code, "title": title, "explanation": explanation, "detail": detail,
                   "needed_roles": sorted(roles or (), key=list(ROLE_LABELS).index)},
                  status_code=status_code, headers=all_headers)


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{CONSOLE_PREFIX}/login?next={quote(target, safe='')}"
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": location})
    if request.method in ("GET", "HEAD"):
        return RedirectResponse(location, status_code=303)
    return error_page(request, 401)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI, api_validation_handler: Handler | None = None) -> None:
    """Registers the console's error handlers; API requests get the usual JSON answers."""

    async def login_required(request: Request, exc: Exception) -> Response:
        return _login_redirect(request)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, N_("The page is out of date. Reload it and try again."))

    async def role_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RoleRequired)
        return error_page(request, 403, None, roles=exc.roles)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not is_console(request):
            return await http_exception_handler(request, exc)
        if exc.status_code == 401:
            return _login_redirect(request)
        return error_page(request, exc.status_code, str(exc.detail) if exc.detail else None,
                          headers=dict(exc.headers or {}))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not is_console(request):
            if api_validation_handler is not None:
                return await api_validation_handler(request, exc)
            return await request_validation_exception_handler(request, exc)
        return error_page(request, 422)

    async def reach_error(request: Request, exc: Exception) -> Response:
        # A ward the caller cannot see reads exactly like an id nobody has: 404 with the same words.
        code = _REACH_STATUS[type(exc)]
        if is_console(request):
            return error_page(request, code, str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=code)

    async def crash(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception with its traceback; the user sees a plain message only.
        log.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
        if is_console(request):
            return error_page(request, 500)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    for reach_exc in _REACH_STATUS:
        app.add_exception_handler(reach_exc, reach_error)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    app.add_exception_handler(RoleRequired, role_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, crash)
