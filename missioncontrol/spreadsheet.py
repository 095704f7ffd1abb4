"""CSV cells a spreadsheet will not run: every CSV export writes its text through `cell`.

A cell starting with `=`, `+`, `-` or `@` is read as a formula by Excel, LibreOffice and
Google Sheets (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and a leading tab or carriage
return hides such a start. Logs and permission checks carry text written by agents
and the servers they call, so such a cell gets a leading `'`: the spreadsheet shows
the text as typed, and the cell is still the text to any other reader.
"""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` made safe for a spreadsheet cell (numbers and other non-text unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
