"""The retirement certificate as an A4 PDF (ReportLab), in the active language.

Text is set in WenQuanYi Micro Hei (Debian's fonts-wqy-microhei), embedded as
a subset with its Unicode map, so Chinese names print and can be searched and
copied. The QR code (segno) is a lossless PNG of whole modules holding the
certificate's public verification address.
"""

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import segno
from django.conf import settings
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

FONT = "RegistrySans"
GREEN = colors.HexColor("#1f5e3f")
DARK = colors.HexColor("#12372a")
MUTED = colors.HexColor("#5b6660")


class FontMissing(Exception):
    """No CJK font file: the PDF cannot be set (install fonts-wqy-microhei)."""


# Debian's fonts-wqy-microhei (installed by scripts/bootstrap.sh and the Dockerfile).
FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
)


@cache
def _register_font() -> str:
    for candidate in getattr(settings, "CERTIFICATE_FONT_FILES", FONT_FILES):
        if Path(candidate).exists():
            pdfmetrics.registerFont(TTFont(FONT, candidate, subfontIndex=0))
            return FONT
    raise FontMissing("fonts-wqy-microhei")


@dataclass
class CertificateSheet:
    """Everything printed, already in words of the active language."""

    number: str
    beneficiary: str
    purpose: str
    reporting_year: str
    quantity: int
    retired_at: str
    account: str
    ranges: list[dict]  # label, project, vintage, quantity
    ecosystems: str
    entries: list[dict]  # sequence, entry_hash
    verify_url: str


def qr_png(url: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(url, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def render(sheet: CertificateSheet) -> bytes:
    font = _register_font()
    styles = {
        "title": ParagraphStyle(
            "title", fontName=font, fontSize=22, leading=28, textColor=DARK
        ),
        "subtitle": ParagraphStyle(
            "subtitle", fontName=font, fontSize=11, leading=15, textColor=MUTED
        ),
        "label": ParagraphStyle(
            "label", fontName=font, fontSize=9, leading=12, textColor=MUTED
        ),
        "value": ParagraphStyle(
            "value", fontName=font, fontSize=11, leading=15, wordWrap="CJK"
        ),
        "big": ParagraphStyle(
            "big", fontName=font, fontSize=16, leading=21, textColor=DARK
        ),
        "small": ParagraphStyle(
            "small", fontName=font, fontSize=7.5, leading=10, wordWrap="CJK"
        ),
        "note": ParagraphStyle(
            "note", fontName=font, fontSize=9, leading=13, textColor=MUTED
        ),
    }

    def text(value, style="value"):
        return Paragraph(escape(str(value)), styles[style])

    story = [
        text(_("Bijie carbon-sink registry"), "subtitle"),
        text(_("Retirement certificate"), "title"),
        text(_("Certificate number %(number)s") % {"number": sheet.number}, "big"),
        Spacer(1, 6 * mm),
    ]
    facts = [
        (_("Beneficiary"), sheet.beneficiary),
        (_("Quantity retired"), f"{sheet.quantity:,} t CO2e"),
        (_("Purpose"), sheet.purpose),
        (_("Reporting year"), sheet.reporting_year),
        (_("Retired on"), sheet.retired_at),
        (_("Retired from account"), sheet.account),
        (_("Ecosystems behind the credits"), sheet.ecosystems),
    ]
    table = Table(
        [[text(label, "label"), text(value)] for label, value in facts],
        colWidths=[48 * mm, 122 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#d7dfda")),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    story += [table, Spacer(1, 6 * mm), text(_("Serial numbers retired"), "big")]
    ranges = [
        [
            text(_("Serial range"), "label"),
            text(_("Project"), "label"),
            text(_("Vintage"), "label"),
            text(_("t CO2e"), "label"),
        ]
    ]
    ranges += [
        [
            text(item["label"], "small"),
            text(item["project"], "small"),
            text(item["vintage"], "small"),
            text(f"{item['quantity']:,}", "small"),
        ]
        for item in sheet.ranges
    ]
    range_table = Table(
        ranges, colWidths=[72 * mm, 60 * mm, 16 * mm, 22 * mm], repeatRows=1
    )
    range_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, GREEN),
                ("LINEBELOW", (0, 1), (-1, -1), 0.3, colors.HexColor("#d7dfda")),
            ]
        )
    )
    story += [range_table, Spacer(1, 6 * mm), text(_("Ledger entries"), "big")]
    story += [
        text(
            _("Entry %(sequence)s · hash %(hash)s")
            % {"sequence": entry["sequence"], "hash": entry["entry_hash"]},
            "small",
        )
        for entry in sheet.entries
    ]
    qr = Image(io.BytesIO(qr_png(sheet.verify_url)), 42 * mm, 42 * mm)
    verify = Table(
        [
            [
                qr,
                [
                    text(_("Verify this certificate"), "big"),
                    Spacer(1, 2 * mm),
                    text(
                        _(
                            "Scan the code or open the address below. The "
                            "registry recomputes the ledger entries' hashes and "
                            "says whether this certificate is valid; no account "
                            "is needed."
                        ),
                        "note",
                    ),
                    Spacer(1, 2 * mm),
                    text(sheet.verify_url, "small"),
                ],
            ]
        ],
        colWidths=[48 * mm, 122 * mm],
    )
    verify.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story += [Spacer(1, 8 * mm), verify]

    buffer = io.BytesIO()

    def frame(canvas, document):
        canvas.saveState()
        canvas.setFillColor(GREEN)
        canvas.rect(0, A4[1] - 8 * mm, A4[0], 8 * mm, stroke=0, fill=1)
        canvas.setFont(font, 8)
        canvas.setFillColor(MUTED)
        canvas.drawString(
            20 * mm,
            12 * mm,
            _("Issued by the Bijie carbon-sink registry · %(number)s")
            % {"number": sheet.number},
        )
        canvas.restoreState()

    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=20 * mm,
        title=f"{_('Retirement certificate')} {sheet.number}",
        author=_("Bijie carbon-sink registry"),
    )
    document.build(story, onFirstPage=frame, onLaterPages=frame)
    return buffer.getvalue()


def qr_svg(url: str) -> str:
    """The same QR code as inline SVG markup, for the certificate page."""
    return segno.make_qr(url, error="m").svg_inline(
        scale=4, border=4, dark="#12372a", title=url
    )
