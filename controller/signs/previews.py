"""Previews of sign content, drawn by the same renderer the agents use, so the PNG is exactly what the board
shows; and the characters the sign font lacks, named for the officer before anything goes out.
"""

from __future__ import annotations

from typing import Any

from controller.broadcasts.media_store import MediaStore
from controller.signs.errors import SignNotFound
from controller.signs.inputs import PAGES
from controller.storage.models import SignContent
from devices.led.content import Panel, TextPage
from devices.led.fonts import FontError
from devices.led.render import LayoutError, RenderedPage, Renderer, png_bytes


class SignPreviews:
    """Draws content pages for a panel and checks their text against the sign font."""

    def __init__(self, media: MediaStore, renderer: Renderer | None = None) -> None:
        self.media = media
        self._renderer = renderer

    @property
    def renderer(self) -> Renderer:
        """The renderer (the font is found on first use, so a controller without it still starts)."""
        if self._renderer is None:
            self._renderer = Renderer()
        return self._renderer

    def warnings(self, pages: list[dict[str, Any]]) -> list[str]:
        """Characters the sign font lacks (they show as a placeholder), named for the officer."""
        out: list[str] = []
        try:
            _ = self.renderer
        except FontError as exc:
            return [f"không kiểm tra được phông chữ (cannot check the sign font): {exc}"]
        for i, page in enumerate(PAGES.validate_python(pages)):
            if isinstance(page, TextPage):
                for ch in self.renderer.substitute(" ".join(page.lines))[1]:
                    out.append(f"trang {i + 1}: không có chữ {ch!r} (U+{ord(ch):04X}) trong phông, sẽ hiện thành □ "
                               f"(page {i + 1}: U+{ord(ch):04X} is not in the sign font; it shows as a box)")
        return out

    def render_page(self, content: SignContent, page_index: int, panel: Panel) -> RenderedPage:
        """One page of content drawn for a panel, as the agent draws it (raises LayoutError, IndexError)."""
        pages = PAGES.validate_python(content.pages)
        page = pages[page_index]
        if isinstance(page, TextPage):
            return self.renderer.render_text(page, panel)
        path = self.media.path_for(page.sha256)
        if path is None:
            raise LayoutError("the page's image is missing from the media store")
        return self.renderer.render_image(page, path.read_bytes(), panel)

    def preview_png(self, content: SignContent, page_index: int, panel: Panel) -> tuple[bytes, RenderedPage]:
        """The exact still a board of ``panel`` shows for one page, as PNG bytes (SignNotFound: no such page)."""
        if not 0 <= page_index < len(content.pages):
            raise SignNotFound(f"content {content.id} has {len(content.pages)} pages; no page {page_index}")
        rendered = self.render_page(content, page_index, panel)
        return png_bytes(rendered.preview()), rendered
