"""The FastAPI application: routers, a body-size guard and the lifespan that runs the controller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

import loaphuong
from controller import web
from controller.api import (
    announcements,
    audit,
    auth,
    bundle,
    cameras,
    devices,
    enrolment,
    health,
    live,
    media,
    ops,
    plays,
    schedule,
    signs,
    speech,
    users,
    zones,
)
from controller.api.media import UPLOAD_PATH
from controller.runtime import Controller
from controller.settings import Settings
from controller.web.errors import error_page, is_console

#: Largest request body the API reads (announcement text is far smaller; uploads get their own limit).
MAX_BODY_BYTES = 1024 * 1024
CONSOLE_DIR = Path(__file__).parent / "console"


class BodyLimit:
    """Refuses a request whose declared body is over :data:`MAX_BODY_BYTES` before it is read.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper pipes every chunk of a streaming
    response through a memory stream, a cost paid per frame per viewer of a live camera view.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != UPLOAD_PATH:
            # recordings (UPLOAD_PATH) have their own, larger limit, enforced while streaming
            length = Headers(scope=scope).get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                request = Request(scope)
                response: Response
                if is_console(request):
                    # the console's own 413 (a page, or a message at the top of the page for htmx)
                    response = error_page(request, 413, f"{MAX_BODY_BYTES // 1024} KiB")
                else:
                    response = JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"},
                                            status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the app; the controller starts with the lifespan and stops with it."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        controller = Controller(settings)
        app.state.controller = controller
        await controller.start()
        try:
            yield
        finally:
            await controller.stop()

    # No /docs: Swagger UI loads its assets from a CDN. The schema stays at /openapi.json.
    app = FastAPI(title="loaphuong", version=loaphuong.__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)

    app.add_middleware(BodyLimit)

    for module in (health, auth, devices, announcements, plays, media, speech, schedule, zones, users, cameras,
                   signs, ops, audit, live):
        app.include_router(module.router)
    app.include_router(enrolment.router)
    app.include_router(bundle.router)
    web.install(app, api_validation_handler=cameras.validation_errors_without_input)
    # The pages still served as static files (sign designer, live broadcast) until they move to templates.
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR), name="console")
    return app
