"""Bounds on what an uploaded spreadsheet may expand to, for every reader of one.

A 700 KB .xlsx can unzip to gigabytes: millions of empty rows, or one shared string of
200 MB. openpyxl builds each row, and the whole shared-strings table, in memory before we see
any of it, so a bomb must be refused before openpyxl opens the file. ``checked_workbook`` does
that in two steps, both cheap and in bounded memory:

1. the zip's central directory: the sizes every member declares (zipfile stops reading a
   member at its declared size, so they cannot lie), in total and for the shared strings;
2. a streaming pass over every XML member (expat, 64 KB at a time): rows, cells per row,
   cells with a value, the length of each cell's text, the sheet's ``<dimension>`` (openpyxl
   pads every row to its width), and no piece of XML longer than ``MAX_TOKEN_BYTES``.
   It stops at the first bound it passes.

``bounded_rows`` applies the same row, column, cell and length bounds to rows already read
(CSV). Roster and XLSForm imports, command line and API alike, call these two. The limits are
configuration (``ZOUFANG_UPLOAD_MAX_*``, docs/admin.md); a bomb is refused with
``UploadTooLarge``: 413 ``payload_too_large`` when the file expands beyond the size limits,
422 ``validation_failed`` when it has too many rows, columns or cells or too long a cell.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from flask import current_app, has_app_context

from server.http.errors import ApiError

MB = 1024 * 1024
#: the longest run of XML without a ``<``: a tag with its attributes, or a text node. A cell's
#: text of 2000 characters, escaped, is ~12 KB; expat holds a whole tag in memory.
MAX_TOKEN_BYTES = MB
#: openpyxl builds a whole row, or a whole shared string, before it clears it, and keeps the
#: elements it does not know until the end of the part: bound both
MAX_ELEMENTS_PER_ROW = 10_000
ELEMENTS_PER_CELL = 4
MAX_OTHER_ELEMENTS = 500_000
CHUNK_BYTES = 64 * 1024
SHARED_STRINGS = "xl/sharedStrings.xml"
#: a member zipfile cannot read: damaged, encrypted, an unknown compression
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)

MESSAGES: dict[str, tuple[str, str]] = {
    "expands_too_far": (
        "文件解压后超过 {limit} MB，无法导入",
        "the file expands beyond {limit} MB once unzipped; it cannot be imported",
    ),
    "shared_strings_too_large": (
        "文件中的文字表（sharedStrings.xml）解压后超过 {limit} MB，无法导入",
        "the file's text table (sharedStrings.xml) expands beyond {limit} MB; "
        "it cannot be imported",
    ),
    "too_many_rows": (
        "文件超过 {limit} 行，请分批导入",
        "the file has more than {limit} rows; import it in parts",
    ),
    "too_many_columns": (
        "有一行超过 {limit} 列",
        "a row has more than {limit} columns",
    ),
    "too_many_cells": (
        "文件中有内容的单元格超过 {limit} 个，请分批导入",
        "the file has more than {limit} cells with a value; import it in parts",
    ),
    "cell_too_long": (
        "有单元格超过 {limit} 个字符",
        "a cell holds more than {limit} characters",
    ),
    "too_many_elements": (
        "文件中的 XML 元素超过 {limit} 个，不是正常的 Excel 文件",
        "the file holds more than {limit} XML elements in one place; it is no ordinary Excel file",
    ),
    "xml_too_long": (
        "文件中有一段数据超过 {limit} MB，不是正常的 Excel 文件",
        "a piece of the file's XML is longer than {limit} MB; it is no ordinary Excel file",
    ),
}
#: the bounds in bytes, shown in MB
BYTE_LIMITS = frozenset({"expands_too_far", "shared_strings_too_large", "xml_too_long"})
#: the bounds whose excess is a file too big to unpack (413); the others are 422
EXPANSION = BYTE_LIMITS | {"too_many_elements"}


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded file may expand to. The defaults fit a whole county's roster:
    50,000 households ≈ 150,000 person rows of ~20 columns, ~180 MB unzipped if every cell
    of it is filled and every text in it differs."""

    uncompressed_bytes: int = 200 * MB
    shared_strings_bytes: int = 50 * MB
    rows: int = 200_000
    columns: int = 64
    cells: int = 3_000_000
    cell_chars: int = 2000  # the longest text a record field holds (sync/records.py)
    #: whether the reader reads the empty rows openpyxl fills in up to a row's number (a
    #: roster does). pyxform stops after a run of empty rows, so for an XLSForm only a row
    #: holding a value is counted by its number: LibreOffice writes empty rows numbered up
    #: to 1,048,576. Every ``<row>`` element counts either way.
    reads_empty_rows: bool = True


#: each limit's configuration key (``ZOUFANG_`` + key in the environment)
CONFIG_KEYS = {
    "uncompressed_bytes": "UPLOAD_MAX_UNCOMPRESSED_BYTES",
    "shared_strings_bytes": "UPLOAD_MAX_SHARED_STRINGS_BYTES",
    "rows": "UPLOAD_MAX_ROWS",
    "columns": "UPLOAD_MAX_COLUMNS",
    "cells": "UPLOAD_MAX_CELLS",
    "cell_chars": "UPLOAD_MAX_CELL_CHARS",
}


def upload_limits() -> UploadLimits:
    """The limits of the app's configuration; the defaults outside an app."""
    if not has_app_context():
        return UploadLimits()
    defaults = UploadLimits()
    return UploadLimits(
        **{
            name: int(current_app.config.get(key, getattr(defaults, name)))
            for name, key in CONFIG_KEYS.items()
        }
    )


class UploadTooLarge(ApiError):
    """An uploaded file that expands beyond the limits: nothing of it was imported."""

    def __init__(self, reason: str, limit: int) -> None:
        self.reason = reason
        self.limit = limit
        self.params = {"limit": limit // MB if reason in BYTE_LIMITS else limit}
        code = "payload_too_large" if reason in EXPANSION else "validation_failed"
        details: dict[str, Any] = {"reason": reason, "limit": limit}
        if reason in BYTE_LIMITS:
            details["max_bytes"] = limit
        super().__init__(code, self.text(english=True), details)
        self.localize(english=True)

    def text(self, english: bool = False) -> str:
        zh, en = MESSAGES[self.reason]
        return (en if english else zh).format(**self.params)

    def localize(self, english: bool) -> UploadTooLarge:
        """The error with its ``details.fields`` in the reader's language."""
        self.details["fields"] = {"file": [self.text(english)]}
        return self


# --- .xlsx -----------------------------------------------------------------------------------


def checked_workbook(content: bytes, limits: UploadLimits | None = None) -> io.BytesIO:
    """The .xlsx ``content`` ready for openpyxl, once it is known to stay within the limits;
    UploadTooLarge otherwise. A file that is no zip is passed on for openpyxl to refuse."""
    limits = limits or upload_limits()
    if len(content) > limits.uncompressed_bytes:
        raise UploadTooLarge("expands_too_far", limits.uncompressed_bytes)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError):
        return io.BytesIO(content)
    with archive:
        _check_directory(archive.infolist(), limits)
        budget = _Budget(limits)
        for member in archive.infolist():
            _scan_member(archive, member, budget)
    return io.BytesIO(content)


def _check_directory(members: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    """The sizes the members declare, before anything is unzipped."""
    for member in members:
        if member.filename == SHARED_STRINGS and member.file_size > limits.shared_strings_bytes:
            raise UploadTooLarge("shared_strings_too_large", limits.shared_strings_bytes)
    if sum(member.file_size for member in members) > limits.uncompressed_bytes:
        raise UploadTooLarge("expands_too_far", limits.uncompressed_bytes)


class _Budget:
    """The counts of one workbook so far, refused as soon as one passes its limit."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.cells = 0
        self.strings = 0
        self.elements = 0
        self.other_elements = 0
        self.row_elements = 0
        # a row holds up to ``columns`` cells of a few elements each (Excel's widest rows
        # when the columns are not bounded, a styled cell per column as LibreOffice writes)
        self.per_row = max(MAX_ELEMENTS_PER_ROW, ELEMENTS_PER_CELL * limits.columns)

    def element(self, in_unit: int) -> None:
        """One more element, ``in_unit`` of them in the current row or shared string."""
        self.elements += 1
        if self.elements > 5 * self.limits.cells:
            raise UploadTooLarge("too_many_elements", 5 * self.limits.cells)
        if in_unit > self.per_row:
            raise UploadTooLarge("too_many_elements", self.per_row)
        if not in_unit:
            self.other_elements += 1
            if self.other_elements > MAX_OTHER_ELEMENTS:
                raise UploadTooLarge("too_many_elements", MAX_OTHER_ELEMENTS)

    def rows(self, row_number: int) -> None:
        if row_number > self.limits.rows:
            raise UploadTooLarge("too_many_rows", self.limits.rows)

    def row_element(self, row_number: int) -> None:
        """A ``<row>``: counted, and by its number when the reader reads up to it."""
        self.row_elements += 1
        self.rows(self.row_elements)
        if self.limits.reads_empty_rows:
            self.rows(row_number)

    def columns(self, column_number: int) -> None:
        if column_number > self.limits.columns:
            raise UploadTooLarge("too_many_columns", self.limits.columns)

    def value(self) -> None:
        self.cells += 1
        if self.cells > self.limits.cells:
            raise UploadTooLarge("too_many_cells", self.limits.cells)

    def string(self) -> None:
        """A shared string: a table longer than the cells that could use it is no roster."""
        self.strings += 1
        if self.strings > self.limits.cells:
            raise UploadTooLarge("too_many_cells", self.limits.cells)

    def chars(self, length: int) -> None:
        if length > self.limits.cell_chars:
            raise UploadTooLarge("cell_too_long", self.limits.cell_chars)


_CELL_REFERENCE = re.compile(r"\$?([A-Za-z]{1,3})?\$?(\d+)?$")
#: elements whose text is one cell's: a value, an inline string, a shared string
_TEXT_OF_A_CELL = frozenset({"v", "is", "si"})
#: what openpyxl builds whole, then clears
_UNITS = frozenset({"row", "si"})


def _number(text: str | None, default: int) -> int:
    """A row number as openpyxl reads it; a missing or broken one counts as the next."""
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


class _SheetCounter:
    """Expat handlers counting what openpyxl would build of one XML member. Elements are
    matched by local name: worksheets have ``row``, ``c`` and ``dimension``, the shared
    strings ``si``; any other part has none of them."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.row = 0  # the current row's number, as openpyxl numbers them
        self.column = 0  # the current cell's column number within the row
        self.cells_in_row = 0
        self.text_depth = 0  # > 0 inside an element whose text is a cell's
        self.text_length = 0
        self.unit_depth = 0  # > 0 inside a row or a shared string
        self.in_unit = 0  # elements in the current row or shared string

    def start(self, name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        if self.unit_depth:
            self.unit_depth += 1
            self.in_unit += 1
        elif local in _UNITS:
            self.unit_depth = self.in_unit = 1
        self.budget.element(self.in_unit if self.unit_depth else 0)
        if local == "row":
            self.row = _number(attributes.get("r"), self.row + 1)
            self.budget.row_element(self.row)
            self.column = self.cells_in_row = 0
        elif local == "c":
            self.cells_in_row += 1
            self.column = self._column(attributes.get("r"))
            self.budget.columns(max(self.column, self.cells_in_row))
        elif local == "dimension":
            self._dimension(attributes.get("ref", ""))
        if local in _TEXT_OF_A_CELL:
            if self.text_depth == 0:
                self.text_length = 0
                if local == "si":
                    self.budget.string()
                else:
                    self.budget.value()
                    self.budget.rows(self.row)  # a row with a value is read, and those before
            self.text_depth += 1

    def end(self, name: str) -> None:
        local = name.rpartition("}")[2]
        if local in _TEXT_OF_A_CELL:
            self.text_depth -= 1
        if self.unit_depth:
            self.unit_depth -= 1

    def text(self, data: str) -> None:
        if self.text_depth:
            self.text_length += len(data)
            self.budget.chars(self.text_length)

    def doctype(self, *_: Any) -> None:
        """Workbooks have no DOCTYPE; one can only be there to expand entities."""
        raise UploadTooLarge("expands_too_far", self.budget.limits.uncompressed_bytes)

    def _column(self, reference: str | None) -> int:
        match = _CELL_REFERENCE.match(reference or "")
        if match and match.group(1):
            return _column_number(match.group(1))
        return self.column + 1

    def _dimension(self, ref: str) -> None:
        """openpyxl pads every row to the dimension's last column: bound it too (though the
        dimension is never trusted for the rows and cells counted)."""
        for corner in ref.split(":"):
            match = _CELL_REFERENCE.match(corner)
            if match and match.group(1):
                self.budget.columns(_column_number(match.group(1)))


def _scan_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: _Budget) -> None:
    """Stream one member through expat, counting; a member that is no XML (an image) or that
    cannot be unzipped is left where that shows: openpyxl refuses it if it needs it."""
    counter = _SheetCounter(budget)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True  # fewer calls; it buffers at most parser.buffer_size
    parser.StartElementHandler = counter.start
    parser.EndElementHandler = counter.end
    parser.CharacterDataHandler = counter.text
    parser.StartDoctypeDeclHandler = counter.doctype
    run = 0  # bytes since the last "<"
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                run = _longest_run(chunk, run)  # before expat buffers a long tag
                parser.Parse(chunk, False)
    except (expat.ExpatError, *UNREADABLE):
        return


def _longest_run(chunk: bytes, run: int) -> int:
    """The run of bytes without a ``<`` at the end of ``chunk``, after checking none in it,
    continued from the previous chunk's ``run``, passes MAX_TOKEN_BYTES."""
    pieces = chunk.split(b"<")
    longest = max([run + len(pieces[0]), *(len(piece) for piece in pieces[1:])])
    if longest > MAX_TOKEN_BYTES:
        raise UploadTooLarge("xml_too_long", MAX_TOKEN_BYTES)
    return len(pieces[-1]) if len(pieces) > 1 else run + len(chunk)


# --- rows already read (CSV) -----------------------------------------------------------------


def bounded_rows(
    rows: Iterable[list[Any]], limits: UploadLimits | None = None
) -> Iterator[list[Any]]:
    """``rows`` as they come, refused (UploadTooLarge) at the first that passes a bound."""
    budget = _Budget(limits or upload_limits())
    for number, row in enumerate(rows, 1):
        budget.rows(number)
        budget.columns(len(row))
        for cell in row:
            if cell is not None and cell != "":
                budget.value()
                budget.chars(len(str(cell)))
        yield row
