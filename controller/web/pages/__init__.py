"""The console's pages, one module each; :data:`PAGE_ROUTERS` lists them for the app."""

from __future__ import annotations

from fastapi import APIRouter

from controller.web.pages import account, events

#: Every console router, in the order they are matched.
PAGE_ROUTERS: list[APIRouter] = [account.router, events.router]
