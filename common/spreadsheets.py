"""CSV for spreadsheet programs, safe from formula injection.

A text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is run as a formula by Excel, WPS and LibreOffice; prefixing a single
quote makes it plain text (the OWASP rule). Numbers are data, so a negative
number stays a number. Every CSV export writes through ``csv_writer``.
"""

import csv
from datetime import date, datetime
from decimal import Decimal

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DATA_TYPES = (int, float, Decimal, date, datetime)


def neutralise_cell(value):
    """The value, or its text with a leading single quote if a spreadsheet
    would read it as a formula. Numbers, dates and None pass unchanged."""
    if value is None or isinstance(value, _DATA_TYPES):
        return value
    text = str(value)  # also lazy translations and other text-like objects
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return value


class SafeCsvWriter:
    """``csv.writer`` whose rows are neutralised cell by cell."""

    def __init__(self, target, **options):
        self._writer = csv.writer(target, **options)

    def writerow(self, row):
        return self._writer.writerow([neutralise_cell(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(target, **options) -> SafeCsvWriter:
    """The only way the registry writes CSV (a test forbids ``csv.writer``
    elsewhere)."""
    return SafeCsvWriter(target, **options)
