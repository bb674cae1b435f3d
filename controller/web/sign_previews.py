"""Previews of sign content: every page as each board of its ward shows it, drawn by the agents' renderer.

Each page is drawn once here to learn whether it fits (the renderer says why not); the console then loads the
API's ``preview.png`` (the same drawing) as its image, so what the officer sees is the board, dot for dot.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.signs import SignService
from controller.storage.models import Device, Sign, SignContent
from controller.web.i18n import N_, gettext
from devices.led.content import Panel
from devices.led.fonts import FontError
from devices.led.render import LayoutError

#: Board sizes offered for a preview besides the attached signs' own (common LED modules and screens).
PREVIEW_SIZES: Final = ("64x16", "96x16", "128x32", "192x64", "192x96", "320x160")
DEFAULT_SIZE: Final = "128x32"
#: The largest a preview is drawn on the page (CSS pixels); small boards are scaled up so each LED shows.
_PREVIEW_WIDTH: Final = 480


@dataclass(frozen=True)
class Preview:
    """One page of content as one board shows it: the API's PNG, or why it does not fit."""

    label: str
    url: str
    width: int
    height: int
    page: int
    pages: int
    problem: str | None

    @property
    def scale(self) -> int:
        """Screen pixels per LED dot: whole numbers, so every dot stays sharp."""
        return max(1, min(8, _PREVIEW_WIDTH // self.width))


def panel_of(text: str) -> Panel | None:
    """A board size written as ``96x16``, or None for anything else."""
    try:
        return Panel.parse(text)
    except (ValueError, ValidationError):
        return None


def previews(session: Session, signs: SignService, content: SignContent, size: str) -> list[Preview]:
    """Every page of ``content`` on every attached sign and on a board of ``size``.

    Each is drawn once here to know whether it fits (the renderer says why not); the page then loads the
    API's ``preview.png``, the same drawing, as its image.
    """
    boards: list[tuple[str, Panel, str]] = []
    # Content goes only on boards of its own ward.
    for sign in session.scalars(select(Sign).join(Device, Device.id == Sign.agent_id)
                                .where(Device.ward_id == content.ward_id).order_by(Sign.id)):
        boards.append((f"{sign.id} ({sign.width}×{sign.height})", Panel(width=sign.width, height=sign.height),
                       f"/api/v1/signs/{quote(sign.id)}/preview.png?" + urlencode({"content_id": content.id})))
    panel = panel_of(size)
    # A size some attached sign already has adds nothing: that sign's preview is the same image.
    if panel is not None and all((b.width, b.height) != (panel.width, panel.height) for _l, b, _u in boards):
        boards.append((gettext("A %(size)s board") % {"size": f"{panel.width}×{panel.height}"}, panel,
                       f"/api/v1/sign-contents/{quote(content.id)}/preview.png?" + urlencode({"size": str(panel)})))
    pages = len(content.pages)
    found: list[Preview] = []
    for label, board, url in boards:
        for page in range(pages):
            problem: str | None = None
            try:
                signs.preview_png(session, content.id, page, board)
            except LayoutError:
                problem = N_("Does not fit this board: shorten the text or split it into pages.")
            except FontError:
                problem = N_("The sign font is missing on the controller; tell your administrator.")
            found.append(Preview(label, f"{url}&page={page}", board.width, board.height, page, pages, problem))
    return found


def ward_signs(session: Session, wards: Collection[str]) -> list[Sign]:
    """The boards on agents of ``wards``."""
    return list(session.scalars(select(Sign).join(Device, Device.id == Sign.agent_id)
                                .where(Device.ward_id.in_(wards)).order_by(Sign.id)))


def preview_sizes(session: Session, wards: Collection[str]) -> list[str]:
    """The board sizes a preview is offered in: common modules and every size the wards' boards have."""
    own = [f"{s.width}x{s.height}" for s in ward_signs(session, wards)]
    return sorted(set(PREVIEW_SIZES) | set(own), key=lambda s: tuple(int(n) for n in s.split("x")))


