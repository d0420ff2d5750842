"""Reading an XLSForm workbook (.xlsx) into the rows ``forms.xlsform.convert_xlsform`` takes.

The converter is pure and knows nothing of Excel; this is the one place that opens the file.
Every sheet becomes a list of ``{column header: cell value}`` with blank rows kept as empty
dicts, so a problem found later names the row the author sees in Excel.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from forms.xlsform import SheetProblem, XLSFormError
from server.admin.uploads import checked_workbook


def read_xlsform(source: Path | IO[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Every sheet of the workbook by name: its data rows under the headers of row 1.
    UploadTooLarge if it expands beyond the upload limits (server/uploads.py)."""
    try:
        content = source.read_bytes() if isinstance(source, Path) else source.read()
        workbook = load_workbook(checked_workbook(content), read_only=True, data_only=True)
        sheets = workbook.worksheets
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as error:
        name = source.name if isinstance(source, Path) else "the file"
        problem = SheetProblem("workbook", None, None, f"{name} is no .xlsx workbook ({error})")
        raise XLSFormError([problem]) from error
    try:
        return {sheet.title: _rows(sheet.iter_rows(values_only=True)) for sheet in sheets}
    finally:
        workbook.close()


def _rows(cells: Any) -> list[dict[str, Any]]:
    rows = list(cells)
    if not rows:
        return []
    headers = ["" if value is None else str(value).strip() for value in rows[0]]
    data = [
        {
            header: value
            for header, value in zip(headers, row, strict=False)
            if header and value is not None and value != ""
        }
        for row in rows[1:]
    ]
    while data and not data[-1]:
        data.pop()
    return data
