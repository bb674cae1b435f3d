"""The FastAPI application: routers, a body-size guard and the lifespan that runs the controller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

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
    reports_monthly,
    schedule,
    signs,
    source,
    speech,
    units,
    users,
    validation,
    zones,
)
from controller.api.body_limit import BodyLimit
from controller.runtime import Controller
from controller.settings import Settings


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

    app.add_middleware(BodyLimit, upload_limit=settings.upload_max_bytes)

    for module in (health, auth, devices, announcements, plays, media, speech, schedule, zones, users, cameras,
                   signs, ops, audit, live, units, reports_monthly, source):
        app.include_router(module.router)
    app.include_router(enrolment.router)
    app.include_router(bundle.router)
    web.install(app, api_validation_handler=validation.validation_errors)
    return app
