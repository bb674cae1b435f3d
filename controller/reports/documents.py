"""A ward's monthly figures as documents: a CSV row per ward (the city's roll-up is the same columns, one row
per ward) and a printable A4 page (PDF, ReportLab) with the ward's name in Vietnamese.

The PDF embeds a TrueType font with Vietnamese diacritics (DejaVu Sans, Debian ``fonts-dejavu-core``,
installed by scripts/setup.sh); ReportLab's built-in fonts have no "ư", "ơ" or "ạ". A site without it gets
:class:`FontMissing`, which says what to install, rather than a page of boxes.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from controller.reports.monthly import PRIORITIES, SOURCES, Broadcasts, WardMonth

#: Where Debian's packages put the fonts (regular, bold); the first pair found is used.
FONT_CANDIDATES: Final = (
    (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
     Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")),  # fonts-dejavu-core
    (Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
     Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf")),  # fonts-noto-core
)
_FONT, _BOLD = "LpReport", "LpReport-Bold"
_font_lock = threading.Lock()

def N_(message: str) -> str:
    """Marks a msgid (the console's catalogues translate it: controller/web/locale/*/city.po)."""
    return message


def gettext(message: str) -> str:
    """``message`` in the language being spoken (the console's catalogues)."""
    # Imported here: controller.web imports the pages, and a page imports this module.
    from controller.web.i18n import gettext as translate

    return translate(message)


#: Labels of priorities and sources (msgids).
PRIORITY_NAMES: Final = {"normal": N_("Normal"), "priority": N_("Priority"), "emergency": N_("Emergency")}
SOURCE_NAMES: Final = {"schedule": N_("Schedule item"), "announcement": N_("Announcement"),
                       "live": N_("Live broadcast"), "city": N_("From above"), "other": N_("Other")}


class FontMissing(RuntimeError):
    """No TrueType font with Vietnamese diacritics is installed for the PDF."""


def _hours(value: float) -> str:
    return f"{value:.2f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def _columns() -> list[tuple[str, str, Callable[[WardMonth], object]]]:
    """(key, header msgid, value) of every CSV column, in order."""
    cols: list[tuple[str, str, Callable[[WardMonth], object]]] = [
        ("ward", N_("Ward id"), lambda r: r.ward),
        ("ward_name", N_("Ward"), lambda r: r.ward_name),
        ("month", N_("Month"), lambda r: str(r.month)),
        ("broadcasts", N_("Broadcasts"), lambda r: r.total.broadcasts),
        ("hours", N_("Broadcast hours"), lambda r: _hours(r.total.hours)),
        ("plays", N_("Speaker plays"), lambda r: r.total.plays),
        ("speaker_hours", N_("Speaker hours"), lambda r: _hours(r.total.speaker_hours)),
    ]

    def group(kind: str, key: str, label: str, pick: Callable[[WardMonth], dict[str, Broadcasts]]) -> None:
        cols.append((f"broadcasts_{key}", f"{label} · {gettext(N_('Broadcasts'))}",
                     lambda r: pick(r).get(key, Broadcasts()).broadcasts))
        cols.append((f"hours_{key}", f"{label} · {gettext(N_('Broadcast hours'))}",
                     lambda r: _hours(pick(r).get(key, Broadcasts()).hours)))

    for priority in PRIORITIES:
        group("priority", priority, gettext(PRIORITY_NAMES[priority]), lambda r: r.by_priority)
    for source in SOURCES:
        group("source", source, gettext(SOURCE_NAMES[source]), lambda r: r.by_source)
    cols += [
        ("speakers_in_service", N_("Speakers in service"), lambda r: r.speakers.in_service),
        ("availability_pct", N_("Availability (%)"), lambda r: _share(r.speakers.availability)),
        ("faults", N_("Faults"), lambda r: r.faults.started),
        ("faults_repaired", N_("Faults repaired"), lambda r: r.faults.repaired),
        ("mean_time_to_repair_hours", N_("Mean time to repair (h)"),
         lambda r: "" if (m := r.faults.mean_time_to_repair_hours) is None else _hours(m)),
        ("faults_open_at_end", N_("Faults open at the month's end"), lambda r: r.faults.open_at_end),
        ("agent_errors", N_("Errors reported by speakers"), lambda r: r.faults.agent_errors),
    ]
    return cols


def csv_columns() -> list[str]:
    """The CSV's column keys (the API's header row)."""
    return [key for key, _label, _value in _columns()]


def months_csv(reports: Iterable[WardMonth], labelled: bool = False) -> bytes:
    """One row per ward; headers are the stable keys (API) or, ``labelled``, in the current language (console).

    UTF-8 with a byte order mark: a spreadsheet then reads the wards' Vietnamese names right.
    """
    columns = _columns()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([gettext(label) if labelled else key for key, label, _value in columns])
    for report in reports:
        writer.writerow([_safe(value(report)) for _key, _label, value in columns])
    return out.getvalue().encode("utf-8-sig")


def _safe(value: object) -> object:
    # A ward's name is typed by staff: never let a spreadsheet run it as a formula.
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _font_lock:
        if _FONT in pdfmetrics.getRegisteredFontNames():
            return
        for regular, bold in FONT_CANDIDATES:
            if regular.is_file() and bold.is_file():
                pdfmetrics.registerFont(TTFont(_FONT, str(regular)))
                pdfmetrics.registerFont(TTFont(_BOLD, str(bold)))
                return
    raise FontMissing("no font with Vietnamese diacritics for the PDF report: install the Debian package "
                      "fonts-dejavu-core (scripts/setup.sh does), looked for "
                      + ", ".join(str(r) for r, _b in FONT_CANDIDATES))


def month_pdf(report: WardMonth, upper_name: str, zone: ZoneInfo, generated: datetime, language: str) -> bytes:
    """The month's figures on one A4 page in ``language``, headed by the ward's (and the city's) name."""
    from controller.web.i18n import using

    _register_fonts()
    with using(language):
        return _page(report, upper_name, zone, generated, decimal_comma=language == "vi")


def _page(report: WardMonth, upper_name: str, zone: ZoneInfo, generated: datetime, decimal_comma: bool) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    body = ParagraphStyle("body", fontName=_FONT, fontSize=10, leading=13)
    title = ParagraphStyle("title", parent=body, fontName=_BOLD, fontSize=16, leading=20, spaceAfter=4)
    heading = ParagraphStyle("heading", parent=body, fontName=_BOLD, fontSize=12, leading=15, spaceBefore=8,
                             spaceAfter=4)
    style = TableStyle([("FONTNAME", (0, 0), (-1, -1), _FONT), ("FONTNAME", (0, 0), (-1, 0), _BOLD),
                        ("FONTSIZE", (0, 0), (-1, -1), 9.5), ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")])

    def table(rows: Sequence[Sequence[str]], widths: Sequence[float]) -> Table:
        t = Table([list(r) for r in rows], colWidths=list(widths), hAlign="LEFT")
        t.setStyle(style)
        return t

    def broadcast_rows(groups: dict[str, Broadcasts], names: dict[str, str], order: Sequence[str]) -> list[list[str]]:
        rows = [[gettext(N_("Kind")), gettext(N_("Broadcasts")), gettext(N_("Broadcast hours")),
                 gettext(N_("Speaker plays")), gettext(N_("Speaker hours"))]]
        for key in order:
            g = groups.get(key, Broadcasts())
            rows.append([gettext(names[key]), str(g.broadcasts), _number(g.hours, 2), str(g.plays),
                         _number(g.speaker_hours, 2)])
        t = report.total
        rows.append([gettext(N_("Total")), str(t.broadcasts), _number(t.hours, 2), str(t.plays),
                     _number(t.speaker_hours, 2)])
        return rows

    def _number(value: float, digits: int = 1) -> str:
        # Vietnamese writes 1.234,5; the page is read by people (the CSV, by spreadsheets, keeps 1234.5).
        text = f"{value:,.{digits}f}"
        return text.replace(",", " ").replace(".", ",").replace(" ", ".") if decimal_comma else text

    wide = [52 * mm, 28 * mm, 32 * mm, 30 * mm, 32 * mm]
    availability = report.speakers.availability
    mttr = report.faults.mean_time_to_repair_hours
    month_label = f"{report.month.month:02d}/{report.month.year}"
    story = [
        Paragraph(_escape(upper_name), body),
        Paragraph(_escape(report.ward_name), title),
        Paragraph(_escape(gettext(N_("Broadcasting report for the month %(month)s")) % {"month": month_label}),
                  heading),
        Paragraph(_escape(gettext(N_("Broadcasts by priority"))), heading),
        table(broadcast_rows(report.by_priority, PRIORITY_NAMES, PRIORITIES), wide),
        Paragraph(_escape(gettext(N_("Broadcasts by source"))), heading),
        table(broadcast_rows(report.by_source, SOURCE_NAMES, SOURCES), wide),
        Paragraph(_escape(gettext(N_("Speakers"))), heading),
        table([[gettext(N_("Figure")), gettext(N_("Value"))],
               [gettext(N_("Speakers in service")), str(report.speakers.in_service)],
               [gettext(N_("Availability (%)")), "—" if availability is None else _number(availability * 100)]],
              [90 * mm, 40 * mm]),
        Paragraph(_escape(gettext(N_("Faults"))), heading),
        table([[gettext(N_("Figure")), gettext(N_("Value"))],
               [gettext(N_("Faults")), str(report.faults.started)],
               [gettext(N_("Faults repaired")), str(report.faults.repaired)],
               [gettext(N_("Mean time to repair (h)")), "—" if mttr is None else _number(mttr, 2)],
               [gettext(N_("Faults open at the month's end")), str(report.faults.open_at_end)],
               [gettext(N_("Errors reported by speakers")), str(report.faults.agent_errors)]],
              [90 * mm, 40 * mm]),
        Spacer(1, 8 * mm),
        Paragraph(_escape(gettext(N_("Generated %(when)s (%(zone)s).")) % {
            "when": generated.astimezone(zone).strftime("%d/%m/%Y %H:%M"), "zone": str(zone)}), body),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=f"{report.ward_name} {month_label}", author="loaphuong")
    doc.build(story)
    return out.getvalue()


def _escape(text: str) -> str:
    # Paragraph reads a small markup: a ward named "A & B" must print as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
