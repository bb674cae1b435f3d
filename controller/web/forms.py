"""Form errors in the user's language, next to the field they are about.

Console forms are validated with the same Pydantic models as the API. Pydantic's messages are English
and technical, so each error is turned into a translated sentence from its ``type`` and context; the
field it belongs to is the last name of its location (``body.text`` → ``text``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from controller.web.i18n import N_, gettext

#: Pydantic error types → a sentence (msgid) that may use the error's context values.
_MESSAGES: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Too short: at least %(min_length)s characters."),
    "string_too_long": N_("Too long: at most %(max_length)s characters."),
    "too_short": N_("Choose at least %(min_length)s."),
    "too_long": N_("Choose at most %(max_length)s."),
    "greater_than_equal": N_("Must be at least %(ge)s."),
    "greater_than": N_("Must be more than %(gt)s."),
    "less_than_equal": N_("Must be at most %(le)s."),
    "less_than": N_("Must be less than %(lt)s."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "bool_parsing": N_("Choose yes or no."),
    "datetime_parsing": N_("Enter a valid date and time."),
    "datetime_from_date_parsing": N_("Enter a valid date and time."),
    "datetime_type": N_("Enter a valid date and time."),
    "date_parsing": N_("Enter a valid date."),
    "time_parsing": N_("Enter a valid time."),
    "timezone_aware": N_("Enter a valid date and time."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "string_pattern_mismatch": N_("This value is not in the expected form."),
    "extra_forbidden": N_("This field is not expected here."),
}
_FALLBACK = N_("This value is not valid.")


def _field(loc: Sequence[Any]) -> str:
    names = [str(part) for part in loc if not isinstance(part, int) and part not in ("body", "query", "form")]
    return names[-1] if names else "__all__"


def translate_error(error: Mapping[str, Any]) -> str:
    """One Pydantic error as a sentence in the current language.

    A validator's own message (``value_error``) is written for the API in English; it is shown after a
    translated lead so that the user still sees what was wrong.
    """
    kind = str(error.get("type", ""))
    context = dict(error.get("ctx") or {})
    if kind == "string_too_short" and context.get("min_length") == 1:
        kind = "missing"  # an empty box: "required" says it better than "at least 1 character"
    if kind in _MESSAGES:
        try:
            return gettext(_MESSAGES[kind]) % context
        except (KeyError, TypeError, ValueError):
            return gettext(_MESSAGES[kind])
    if kind in ("value_error", "assertion_error") and error.get("msg"):
        return gettext("This value is not valid: %(reason)s") % {"reason": str(error["msg"]).removeprefix(
            "Value error, ")}
    return gettext(_FALLBACK)


def field_errors(errors: ValidationError | Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Translated messages by field name (``__all__`` for errors about the whole form)."""
    items = errors.errors() if isinstance(errors, ValidationError) else errors
    found: dict[str, list[str]] = {}
    for error in items:
        found.setdefault(_field(error.get("loc", ())), []).append(translate_error(error))
    return found
