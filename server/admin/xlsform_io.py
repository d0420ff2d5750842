"""Reading an XLSForm workbook (.xlsx or .xls) with pyxform into a form definition.

pyxform is the reference implementation of XLSForm, kept by the ODK and KoboToolbox projects:
it reads the workbook, accepts every spelling those tools accept and builds the form, so a
county's existing forms mean here what they mean in ODK. ``forms.xlsform.convert_survey``
then translates pyxform's JSON form into a Zoufang definition. This is the one place that
opens the file, and it bounds it first: an .xlsx must pass ``server.admin.uploads.checked_workbook``
(a zip bomb is refused before anything unzips it), an .xls (an OLE file, not compressed) the
size limit and the row bounds. Whatever pyxform refuses is reported as an XLSFormError, with
the row when pyxform names one: no input gives a traceback.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pyxform.builder import create_survey_element_from_dict
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import DefinitionData, get_xlsform

from forms.xlsform import SheetProblem, XLSFormError, convert_survey, locate, normalize_row
from server.admin.uploads import UploadTooLarge, bounded_rows, checked_workbook, upload_limits

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ROW = re.compile(r"\[row : (\d+)\]\s*")
_SHEETS = ("survey", "choices", "settings")
EXCEL_COLUMNS = 16_384


def convert_workbook(
    source: Path | IO[bytes],
    *,
    form_id: str | None = None,
    version: int | None = None,
    filename: str | None = None,
    media: Path | None = None,
) -> dict[str, Any]:
    """The definition document of an XLSForm file. Its form id is ``form_id``, else the
    settings sheet's, else its file name's. The CSV files of ``select_one_from_file``
    questions are read from the folder ``media``, by default the workbook's own folder (an
    uploaded stream has none: such a question is refused at its row). Raises XLSFormError
    listing every problem, or UploadTooLarge for a file beyond the upload limits
    (server/uploads.py)."""
    name = filename or (source.name if isinstance(source, Path) else None) or "the file"
    workbook = read_xlsform(source, name)
    if media is None and isinstance(source, Path):
        media = source.parent
    return convert_sheets(
        workbook,
        form_id=form_id,
        version=version,
        fallback_id=Path(name).stem,
        media=MediaFolder(media) if media is not None else None,
    )


def convert_sheets(
    workbook: DefinitionData | Mapping[str, Sequence[Mapping[str, object]]],
    *,
    form_id: str | None = None,
    version: int | None = None,
    fallback_id: str | None = None,
    media: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
) -> dict[str, Any]:
    """The definition document of a workbook already read: pyxform's own reading, or sheets
    given as ``{sheet name: [{column header: cell}]}`` (a blank row is an empty mapping).
    ``media`` maps the file names of choices files to their rows (``MediaFolder``)."""
    data = workbook if isinstance(workbook, DefinitionData) else _definition_data(workbook)
    survey = _pyxform_json(_untranslated_title(data))
    sheets = {sheet: list(getattr(data, sheet) or []) for sheet in _SHEETS}
    external: dict[str, list[Mapping[str, object]]] = {}
    for row in data.external_choices or []:
        cells = normalize_row(row)  # headers as the choices sheet's: LIST_NAME, list name …
        external.setdefault(cells.get("list_name", ""), []).append(cells)
    return convert_survey(
        survey,
        locate(sheets),
        form_id=form_id,
        fallback_id=fallback_id,
        version=version,
        external=_Choices(external, media if media is not None else {}),
    )


class _Choices(Mapping[str, Sequence[Mapping[str, object]]]):
    """The lists of the external_choices sheet, then the attached files, by name."""

    def __init__(
        self,
        sheet: Mapping[str, Sequence[Mapping[str, object]]],
        files: Mapping[str, Sequence[Mapping[str, object]]],
    ) -> None:
        self.sheet, self.files = sheet, files

    def __getitem__(self, name: str) -> Sequence[Mapping[str, object]]:
        return self.sheet[name] if name in self.sheet else self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.sheet)

    def __len__(self) -> int:
        return len(self.sheet)


class MediaFolder(Mapping[str, Sequence[Mapping[str, object]]]):
    """The CSV files a form names (``select_one_from_file villages.csv``) in one folder, read
    when asked for, within the upload bounds: file name -> rows as {column: cell}. Only a
    plain file name is looked up, never a path."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __getitem__(self, name: str) -> Sequence[Mapping[str, object]]:
        path = self.folder / name
        if Path(name).name != name or not name.endswith(".csv") or not path.is_file():
            raise KeyError(name)
        limits = dataclasses.replace(upload_limits(), columns=EXCEL_COLUMNS)
        if path.stat().st_size > limits.uncompressed_bytes:
            raise UploadTooLarge("expands_too_far", limits.uncompressed_bytes)
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
        table = list(bounded_rows(csv.reader(io.StringIO(text)), limits))
        header = [cell.strip() for cell in table[0]] if table else []
        return [dict(zip(header, row, strict=False)) for row in table[1:] if any(row)]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p.name for p in self.folder.glob("*.csv")))

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.csv")))


def read_xlsform(source: Path | IO[bytes], name: str = "the file") -> DefinitionData:
    """pyxform's reading of the workbook (its sheets as rows), once it is known to stay within
    the upload limits; UploadTooLarge otherwise, XLSFormError if it is no workbook."""
    if isinstance(source, Path):
        name, content = source.name, source.read_bytes()
    else:
        content = source.read()
    # A form has a column per language of every text column, and LibreOffice declares
    # 1024 columns on every sheet: any width Excel allows. pyxform reads only the columns
    # under a header, so the width costs nothing; the row, cell and size bounds stay.
    limits = dataclasses.replace(
        upload_limits(), columns=EXCEL_COLUMNS, reads_empty_rows=False
    )  # pyxform stops after a run of empty rows: trailing empty ones cost nothing
    if len(content) > limits.uncompressed_bytes:
        raise UploadTooLarge("expands_too_far", limits.uncompressed_bytes)
    if content.startswith(_ZIP):
        file_type, data = ".xlsx", checked_workbook(content, limits)
    elif content.startswith(_OLE):
        file_type, data = ".xls", io.BytesIO(content)
    else:
        raise _workbook_problem(f"{name} is no .xlsx or .xls workbook")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = get_xlsform(data, file_type=file_type)
    except Exception as error:  # pyxform, openpyxl and xlrd on damaged files: any exception
        problem = f"{name} cannot be read as a {file_type} workbook ({error})"
        raise _workbook_problem(problem) from None
    for sheet in _SHEETS:
        rows = getattr(workbook, sheet) or []
        for _ in bounded_rows([list(row.values()) for row in rows], limits):
            pass
    return workbook


def _pyxform_json(data: DefinitionData) -> dict[str, Any]:
    """pyxform's JSON form, once pyxform has also built the XForm from it: a form is imported
    only if ODK itself would accept it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            survey = workbook_to_json(
                workbook_dict=data, fallback_form_name=data.fallback_form_name, warnings=[]
            )
            create_survey_element_from_dict(survey).to_xml(validate=False, warnings=[])
    except Exception as error:  # pyxform refuses by raising; some inputs raise other types
        raise XLSFormError([_pyxform_problem(str(error) or type(error).__name__)]) from None
    return survey


def _untranslated_title(data: DefinitionData) -> DefinitionData:
    """The workbook without the translations of its title (``form_title::English (en)``, as
    Zoufang's download writes them): pyxform cannot build a form whose title is translated,
    and reads only the plain ``form_title``."""
    settings = [
        {key: value for key, value in row.items() if not str(key).lower().startswith("form_title:")}
        for row in data.settings or []
    ]
    return dataclasses.replace(data, settings=settings)


def _pyxform_problem(message: str) -> SheetProblem:
    """pyxform's message, at the row it names (``[row : 7] …``)."""
    match = _ROW.search(message)
    row = int(match.group(1)) if match else None
    text = _ROW.sub("", message).strip()
    sheet = next((s for s in ("choices", "settings") if f"'{s}'" in text.lower()), "survey")
    return SheetProblem(sheet, row, None, f"pyxform: {text}")


def _definition_data(sheets: Mapping[str, Sequence[Mapping[str, object]]]) -> DefinitionData:
    """Sheets given as rows, in the shape pyxform's own readers produce: text cells, lowercase
    sheet names and the headers of each sheet."""
    book: dict[str, Any] = {"sheet_names": list(sheets)}
    for sheet_name, rows in sheets.items():
        key = sheet_name.strip().lower()
        text_rows = [{str(k): _text(v) for k, v in row.items() if _text(v) != ""} for row in rows]
        headers = dict.fromkeys(k for row in text_rows for k in row)
        book[key] = text_rows
        book[f"{key}_header"] = [dict.fromkeys(headers)] if headers else []
    known = set(DefinitionData.__dataclass_fields__)
    return DefinitionData(**{k: v for k, v in book.items() if k in known})


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _workbook_problem(message: str) -> XLSFormError:
    return XLSFormError([SheetProblem("workbook", None, None, message)])
