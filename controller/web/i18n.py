"""The console's languages: gettext catalogues read from ``locale/<lang>/LC_MESSAGES/*.po``.

The source strings (msgids) are English; ``vi`` — the default, for ward staff — translates them. Every
page keeps its own ``.po`` file in each language's folder, and all of a language's files are merged at
start-up, so pages can be added without touching one shared catalogue. The ``.po`` files are read
directly (Babel compiles them in memory), so there is no compiled ``.mo`` to keep in step.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).parent / "locale"
#: Languages offered, the default first.
LANGUAGES: tuple[str, ...] = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
#: The cookie remembering a user's choice (a preference, not a secret: readable, a year long).
LANG_COOKIE = "lp_lang"
#: Names shown in the language switch, each in its own language (not translated on purpose).
LANGUAGE_NAMES: dict[str, str] = {"vi": "Tiếng Việt", "en": "English"}


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(language: str) -> NullTranslations:
    """Every ``.po`` of ``language`` merged into one catalogue (English, the source, needs none)."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    merged: NullTranslations = NullTranslations()
    files = sorted(folder.glob("*.po")) if folder.is_dir() else []
    for number, path in enumerate(files):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language, domain=path.stem)
        buffer = BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        part = Translations(fp=buffer, domain="messages")
        if number == 0:
            merged = part
        else:
            assert isinstance(merged, Translations)
            merged.merge(part)
    return merged


_current: contextvars.ContextVar[str] = contextvars.ContextVar("lp_language", default=DEFAULT_LANGUAGE)


@contextmanager
def using(language: str) -> Iterator[None]:
    """Makes ``language`` the one :func:`gettext` speaks while the block runs (one request's rendering)."""
    token = _current.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language."""
    return translations(_current.get()).ngettext(singular, plural, n)


def pick_language(request: Request) -> str:
    """The language for a request: the user's choice (cookie), else Vietnamese.

    The browser's Accept-Language is not consulted on purpose: ward phones and PCs are often set to
    English, and the console is Vietnamese until someone chooses otherwise.
    """
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def speaking_to(request: Request) -> AbstractContextManager[None]:
    """The request's language for messages made in Python (form errors, notices) outside a template."""
    return using(pick_language(request))
