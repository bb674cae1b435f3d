"""The web console: server-rendered pages (Jinja2 + htmx), in Vietnamese first, English on request.

:func:`install` adds the pages, their error handling and the static files to the app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from controller.web import errors
from controller.web.errors import Handler
from controller.web.pages import PAGE_ROUTERS

STATIC_DIR = Path(__file__).parent / "static"
#: Third-party front-end files (htmx), installed from npm by scripts/setup.sh; git-ignored.
VENDOR_DIR = Path(__file__).parent.parent / "static" / "vendor"


def install(app: FastAPI, api_validation_handler: Handler | None = None) -> None:
    """Adds the console to ``app``: its pages, error pages for console paths, and ``/static``."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    errors.install(app, api_validation_handler)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The site's address opens the console."""
        return RedirectResponse("/console/", status_code=307)

    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
