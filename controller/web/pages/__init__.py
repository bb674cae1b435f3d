"""The console's pages, one module each. Every module here with a ``router`` is part of the console:
:data:`PAGE_ROUTERS` finds them, so a new page needs no edit elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def _discover() -> list[APIRouter]:
    routers: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers


#: Every console router, in module-name order.
PAGE_ROUTERS: list[APIRouter] = _discover()
