"""The console's languages: Vietnamese translates every message the pages ask for, no template holds
text outside gettext, and every translation keeps its msgid's placeholders."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from controller.web.catalogue import extract, missing, translated
from controller.web.i18n import LOCALE_DIR, gettext, translations, using
from controller.web.templating import TEMPLATES_DIR

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
#: Jinja's own parts, whole ``{% trans %}…{% endtrans %}`` blocks first (their text is the msgid).
JINJA = re.compile(r"\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
ATTRIBUTES = re.compile(r'([\w-]+="[^"]*"\s*)+')
#: Words that are the same in every language: the product's name, units and codes.
ALLOWED_WORDS = {"loaphuong", "px", "ms", "kb", "kib", "mb", "mib", "db", "ok", "id", "mqtt", "rtsp", "onvif",
                 "ptz", "led", "csv", "qr", "url", "ip", "tts", "wifi", "4g", "gpio", "x", "h"}


def test_vietnamese_translates_every_message() -> None:
    gaps = missing("vi")
    assert not gaps, "messages without a Vietnamese translation (python -m controller.web.catalogue):\n" + \
        "\n".join(f"{m.where}: {m.msgid!r}" for m in gaps)


def test_the_catalogues_parse_and_keep_placeholders() -> None:
    files = sorted((LOCALE_DIR / "vi" / "LC_MESSAGES").glob("*.po"))
    assert files
    wrong: list[str] = []
    for path in files:
        with path.open("rb") as handle:
            catalog = read_po(handle, locale="vi")
        for entry in catalog:
            if not entry.id:
                continue
            ids = entry.id if isinstance(entry.id, tuple | list) else (entry.id,)
            strings = entry.string if isinstance(entry.string, tuple | list) else (entry.string,)
            want = set(PLACEHOLDER.findall(ids[0]))
            for text in strings:
                if text and set(PLACEHOLDER.findall(text)) != want:
                    wrong.append(f"{path.name}: {ids[0]!r} → {text!r}")
    assert not wrong, "translations that lose or add placeholders:\n" + "\n".join(wrong)


def test_no_message_is_translated_two_ways() -> None:
    """Every page keeps its own .po file, merged at start-up; the same msgid translated differently in two
    files would make one page's wording depend on which file sorts last."""
    seen: dict[str, tuple[str, str]] = {}
    clashes: list[str] = []
    for path in sorted((LOCALE_DIR / "vi" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale="vi")
        for entry in catalog:
            if not entry.id or not entry.string:
                continue
            key, text = str(entry.id if isinstance(entry.id, str) else entry.id[0]), str(entry.string)
            if key in seen and seen[key][1] != text:
                clashes.append(f"{key!r}: {seen[key][0]} says {seen[key][1]!r}, {path.name} says {text!r}")
            seen.setdefault(key, (path.name, text))
    assert not clashes, "\n".join(clashes)


def test_every_message_the_code_asks_for_is_found() -> None:
    found = extract()
    # the frame's own strings, from templates and Python alike
    for msgid in ("Sign in", "Dashboard", "This field is required.", "Skip to content"):
        assert msgid in found
    assert len(translated("vi")) >= len(found) - len(missing("vi"))


class _TextFinder(HTMLParser):
    """Collects text nodes and user-visible attributes of a template with its Jinja parts removed."""

    VISIBLE_ATTRS = ("title", "placeholder", "alt", "aria-label", "value")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in self.VISIBLE_ATTRS and value and not (tag == "input" and name == "value"):
                self._check(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._check(data)

    def _check(self, text: str) -> None:
        if ATTRIBUTES.fullmatch(text.strip()):
            return  # a macro writing attributes (aria-invalid="true" …), not words
        for word in re.findall(r"[^\W\d_]+", text):
            if word.lower() not in ALLOWED_WORDS:
                self.found.append(text.strip())
                return


@pytest.mark.parametrize("template", sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.html")))
def test_no_template_holds_text_outside_gettext(template: str) -> None:
    source = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    finder = _TextFinder()
    finder.feed(JINJA.sub(" ", source))
    assert not finder.found, f"{template}: visible text not passed through _(): {finder.found}"


def test_english_is_the_source_and_vietnamese_the_translation() -> None:
    with using("vi"):
        assert gettext("Sign in") == "Đăng nhập"
    with using("en"):
        assert gettext("Sign in") == "Sign in"
    assert translations("vi").gettext("Dashboard") == "Tổng quan"


def test_templates_dir_is_packaged() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert "web/templates/**/*" in pyproject and "web/locale/*/LC_MESSAGES/*.po" in pyproject
