"""The console's message catalogues: what the code and templates ask to translate, and what is missing.

``loaphuong console-messages`` (see controller/cli.py) prints the msgids a language lacks, or writes a
``.po`` skeleton for them; the tests fail while Vietnamese lacks any.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from controller.web.i18n import LOCALE_DIR

WEB_DIR = Path(__file__).parent
#: How each kind of file is read for messages: templates by Jinja2's extractor, Python by Babel's.
METHOD_MAP = [("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2"), ("**.py", "python")]
#: Python calls whose first argument is a message.
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


@dataclass(frozen=True)
class Message:
    """One message the console asks for, and where."""

    msgid: str
    plural: str | None
    where: str


def extract() -> dict[str, Message]:
    """Every message of the console's templates and Python modules, by msgid."""
    found: dict[str, Message] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(WEB_DIR), method_map=METHOD_MAP, keywords=KEYWORDS,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                               "lstrip_blocks": "true"}}):
        if isinstance(message, tuple):
            singular, plural = str(message[0]), str(message[1]) if len(message) > 1 and message[1] else None
        else:
            singular, plural = str(message), None
        if singular:
            found.setdefault(singular, Message(singular, plural, f"controller/web/{filename}:{lineno}"))
    return found


def translated(language: str) -> dict[str, str | tuple[str, ...]]:
    """msgid → translation for every non-fuzzy, non-empty entry of the language's ``.po`` files."""
    result: dict[str, str | tuple[str, ...]] = {}
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for entry in catalog:
            if not entry.id or entry.fuzzy:
                continue
            key = entry.id[0] if isinstance(entry.id, tuple | list) else entry.id
            value = entry.string
            if isinstance(value, tuple | list):
                if all(value):
                    result[str(key)] = tuple(str(v) for v in value)
            elif value:
                result[str(key)] = str(value)
    return result


def missing(language: str) -> list[Message]:
    """Messages the code asks for that ``language`` does not translate."""
    have = translated(language)
    return [m for msgid, m in sorted(extract().items()) if msgid not in have]


def po_skeleton(messages: list[Message]) -> str:
    """``.po`` entries (empty translations) for ``messages``, to fill in."""
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    parts = []
    for m in messages:
        if m.plural:
            parts.append(f"#: {m.where}\nmsgid {quote(m.msgid)}\nmsgid_plural {quote(m.plural)}\n"
                         'msgstr[0] ""\n')
        else:
            parts.append(f"#: {m.where}\nmsgid {quote(m.msgid)}\nmsgstr \"\"\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.web.catalogue [LANG]``: the missing messages as a ``.po`` skeleton."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    language = args[0] if args else "vi"
    gaps = missing(language)
    print(po_skeleton(gaps))
    print(f"# {len(gaps)} message(s) missing in {language}", file=sys.stderr)
    return 1 if gaps else 0


if __name__ == "__main__":
    raise SystemExit(main())
