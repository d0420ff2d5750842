"""Spreadsheet bombs (issue 13 item 6): a small upload that expands to gigabytes is refused
in seconds, in bounded memory, with nothing imported — roster and XLSForm, API and CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from server.admin.uploads import UploadTooLarge, checked_workbook
from server.admin.xlsform_io import read_xlsform
from server.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "samples" / "roster_example.csv"
MONTHLY = Path(__file__).parent / "samples" / "xlsform_monthly_monitoring.xlsx"
ADMIN = "/api/v1/admin"
MB = 1024 * 1024
#: the issue's worker grew 5.6 GB; a refusal must stay well under 300 MB above the baseline
MEMORY_BOUND_MB = 150
SECONDS = 5.0

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
WORKBOOK_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def xlsx(sheet: Iterable[bytes], shared_strings: Iterable[bytes] | None = None) -> bytes:
    """A minimal workbook Excel and openpyxl open, its sheet (and shared strings) streamed
    into the zip piece by piece, so that a bomb is never whole in the test's memory."""
    strings = shared_strings is not None
    override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{STRINGS_TYPE}"/>'
    parts = {
        "[Content_Types].xml": (
            f'<Types xmlns="{PACKAGE}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{WORKBOOK_TYPE}"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}"/>'
            f"{override if strings else ''}</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PACKAGE}/relationships">'
            f'<Relationship Id="rId1" Type="{RELATIONS}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{RELATIONS}"><sheets>'
            '<sheet name="survey" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE}/relationships">'
            f'<Relationship Id="rId1" Type="{RELATIONS}/worksheet" '
            'Target="worksheets/sheet1.xml"/>'
            + (
                f'<Relationship Id="rId2" Type="{RELATIONS}/sharedStrings" '
                'Target="sharedStrings.xml"/>'
                if strings
                else ""
            )
            + "</Relationships>"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        streams = {"xl/worksheets/sheet1.xml": sheet}
        if shared_strings is not None:
            streams["xl/sharedStrings.xml"] = shared_strings
        for name, pieces in streams.items():
            with archive.open(name, "w", force_zip64=True) as member:
                for piece in pieces:
                    member.write(piece)
    return buffer.getvalue()


def sheet_of_rows(rows: int, row: str = "<row/>") -> Iterator[bytes]:
    """A sheet of ``rows`` empty rows, numbered by their order as Excel allows."""
    yield f'<worksheet xmlns="{MAIN}"><sheetData>'.encode()
    for start in range(0, rows, 100_000):
        yield row.encode() * min(100_000, rows - start)
    yield b"</sheetData></worksheet>"


def empty_rows_bomb(rows: int, row: str = "<row/>") -> bytes:
    return xlsx(sheet_of_rows(rows, row))


def one_cell_bomb(length: int) -> bytes:
    """One cell whose shared string is ``length`` times the same character."""
    sheet = f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
    sheet += "</row></sheetData></worksheet>"

    def strings() -> Iterator[bytes]:
        yield f'<sst xmlns="{MAIN}" count="1" uniqueCount="1"><si><t>'.encode()
        for _ in range(length // MB):
            yield b"x" * MB
        yield b"x" * (length % MB) + b"</t></si></sst>"

    return xlsx([sheet.encode()], strings())


@pytest.fixture(scope="module")
def rows_bomb() -> bytes:
    """The issue's roster: 5 million empty rows, 265 MB unzipped, well under 1 MB zipped."""
    bomb = empty_rows_bomb(5_000_000, '<row spans="1:20" ht="15.75" customHeight="1" x="1"/>')
    assert len(bomb) < MB
    return bomb


@pytest.fixture(scope="module")
def rows_under_the_size_limit() -> bytes:
    """1 million empty rows: 6 MB unzipped, within the size bounds but not the rows'."""
    return empty_rows_bomb(1_000_000)


@pytest.fixture(scope="module")
def cell_bomb() -> bytes:
    """The issue's one-cell bomb: one shared string of 200 MB in a file of ~200 KB."""
    bomb = one_cell_bomb(200 * MB)
    assert len(bomb) < MB
    return bomb


def upload(device: Any, content: bytes, name: str = "roster.xlsx", **headers: str) -> Any:
    """The multipart body written out: the test client's own leaves a temporary file open
    for one over 500 KB."""
    boundary = "zoufang-upload-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
    body = f"{head}\r\n\r\n".encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return device.client.post(
        ADMIN + "/roster",
        data=body,
        headers={**device.headers, **headers},
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def timed_upload(device: Any, content: bytes, **headers: str) -> Any:
    started = time.monotonic()
    response = upload(device, content, **headers)
    assert time.monotonic() - started < SECONDS
    return response


def households(county: Any) -> int:
    admin = county.device("admin")
    response = admin.client.get(ADMIN + "/households", headers=admin.headers)
    return int(response.get_json()["total"])


# --- the admin API ---------------------------------------------------------------------------


def test_a_roster_that_unzips_beyond_the_size_limit_is_413_and_imports_nothing(
    any_county: Any, rows_bomb: bytes
) -> None:
    before = households(any_county)

    response = timed_upload(any_county.device("admin"), rows_bomb, **{"Accept-Language": "en"})

    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["max_bytes"] == 200 * MB
    assert error["details"]["fields"]["file"] == [
        "the file expands beyond 200 MB once unzipped; it cannot be imported"
    ]
    assert "beyond 200 MB" in error["message"]
    assert households(any_county) == before


def test_a_one_cell_bomb_is_413_for_its_shared_strings(county: Any, cell_bomb: bytes) -> None:
    response = timed_upload(county.device("admin"), cell_bomb)

    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["reason"] == "shared_strings_too_large"
    assert "sharedStrings.xml" in error["details"]["fields"]["file"][0]  # in Chinese by default


def test_a_roster_with_more_rows_than_the_limit_is_422_naming_the_limit(
    county: Any, rows_under_the_size_limit: bytes
) -> None:
    before = households(county)

    response = timed_upload(
        county.device("admin"), rows_under_the_size_limit, **{"Accept-Language": "en"}
    )

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"]["fields"] == {
        "file": ["the file has more than 200000 rows; import it in parts"]
    }
    assert households(county) == before


def test_a_cell_longer_than_the_limit_is_422_even_when_the_file_is_small(county: Any) -> None:
    response = timed_upload(county.device("admin"), one_cell_bomb(20 * MB))

    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["reason"] == "cell_too_long"


def test_a_dimension_wider_than_the_column_limit_is_422(county: Any) -> None:
    """openpyxl pads every row to the width the sheet's <dimension> claims."""
    sheet = f'<worksheet xmlns="{MAIN}"><dimension ref="A1:XFD1048576"/><sheetData>'
    sheet += '<row r="1"><c r="A1" t="inlineStr"><is><t>户编码</t></is></c></row>'
    sheet += "</sheetData></worksheet>"

    response = timed_upload(county.device("admin"), xlsx([sheet.encode()]))

    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["reason"] == "too_many_columns"


def test_a_row_number_past_the_limit_is_refused_as_the_rows_openpyxl_would_fill_in() -> None:
    sheet = f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"/><row r="1048576"/>'
    sheet += "</sheetData></worksheet>"

    with pytest.raises(UploadTooLarge) as refused:
        checked_workbook(xlsx([sheet.encode()]))

    assert refused.value.reason == "too_many_rows"


@pytest.mark.parametrize(
    "sheet_data",
    [
        pytest.param("<x/>" * 600_000, id="elements openpyxl keeps to the end of the sheet"),
        pytest.param("<row>" + "<x/>" * 20_000 + "</row>", id="elements of one row"),
    ],
)
def test_a_sheet_of_elements_openpyxl_would_keep_is_refused(sheet_data: str) -> None:
    sheet = f'<worksheet xmlns="{MAIN}"><sheetData>{sheet_data}</sheetData></worksheet>'

    with pytest.raises(UploadTooLarge) as refused:
        checked_workbook(xlsx([sheet.encode()]))

    assert refused.value.reason == "too_many_elements"
    assert refused.value.code == "payload_too_large"


def test_a_csv_roster_over_the_configured_row_limit_is_422(county: Any) -> None:
    county.app.config["UPLOAD_MAX_ROWS"] = 50
    content = SAMPLE.read_bytes() + "\n".join(["1,2,3"] * 50).encode()

    response = upload(county.device("admin"), content, name="roster.csv")

    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["reason"] == "too_many_rows"


def test_a_damaged_workbook_is_still_reported_as_unreadable(county: Any) -> None:
    content = bytearray(xlsx([f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>'.encode()]))
    entry = content.rindex(b"PK\x01\x02")  # the sheet's entry in the central directory
    content[entry + 16 : entry + 20] = b"\0\0\0\0"  # its CRC-32: unzipping it fails

    response = upload(county.device("admin"), bytes(content), **{"Accept-Language": "en"})

    assert response.status_code == 422
    (error,) = response.get_json()["error"]["details"]["errors"]
    assert error["code"] == "bad_xlsx"


def test_the_sample_roster_still_imports_within_the_limits(county: Any) -> None:
    response = upload(county.device("admin"), SAMPLE.read_bytes(), name="roster.csv")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["people"]["created"] == 10


def test_a_roster_of_10000_rows_and_20_columns_passes_the_workbook_bounds() -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([f"列{n}" for n in range(20)])
    for row in range(10_000):
        sheet.append([f"{row}-{column}" for column in range(20)])
    content = io.BytesIO()
    workbook.save(content)

    checked_workbook(content.getvalue())  # raises UploadTooLarge if it did not fit


# --- the command line ------------------------------------------------------------------------


def cli(county: Any, *args: str) -> Any:
    env = {
        "ZOUFANG_DATABASE_URL": county.app.config["SQLALCHEMY_DATABASE_URI"],
        "ZOUFANG_SECRET_KEY": "cli-test",
        "LANG": "en_US.UTF-8",
    }
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def test_the_cli_refuses_a_roster_bomb_with_a_message_and_exit_1(
    county: Any, rows_bomb: bytes, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.xlsx"
    bomb.write_bytes(rows_bomb)
    before = households(county)

    started = time.monotonic()
    result = cli(county, "import", "roster", str(bomb))

    assert time.monotonic() - started < SECONDS
    assert result.exit_code == 1
    assert "the file expands beyond 200 MB once unzipped" in result.output
    assert "Traceback" not in result.output
    assert households(county) == before


def test_the_cli_refuses_an_xlsform_bomb_with_a_message_and_exit_1(
    county: Any, cell_bomb: bytes, tmp_path: Path
) -> None:
    bomb = tmp_path / "survey.xlsx"
    bomb.write_bytes(cell_bomb)
    before = cli(county, "forms", "list").output

    result = cli(county, "forms", "import-xlsform", str(bomb))

    assert result.exit_code == 1
    assert "survey.xlsx: the file's text table (sharedStrings.xml) expands beyond" in result.output
    assert cli(county, "forms", "list").output == before


def test_reading_an_xlsform_with_too_many_rows_is_refused_in_seconds(
    rows_under_the_size_limit: bytes,
) -> None:
    started = time.monotonic()
    with pytest.raises(UploadTooLarge) as refused:
        read_xlsform(io.BytesIO(rows_under_the_size_limit))
    assert refused.value.reason == "too_many_rows"
    assert time.monotonic() - started < SECONDS


def test_the_sample_xlsform_still_reads() -> None:
    assert read_xlsform(MONTHLY).survey


def with_sheet_data_appended(workbook: bytes, extra: str) -> bytes:
    """``workbook`` with ``extra`` added at the end of every worksheet's rows."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, zipfile.ZipFile(out, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename.startswith("xl/worksheets/sheet"):
                data = data.replace(b"</sheetData>", extra.encode() + b"</sheetData>")
            target.writestr(member, data)
    return out.getvalue()


def test_an_xlsform_with_libreoffice_s_empty_rows_numbered_to_the_end_reads() -> None:
    """LibreOffice writes styled empty rows numbered up to 1,048,576; pyxform stops after a
    run of empty rows, so they cost nothing (a roster reader would read them: refused there)."""
    rows = '<row r="1048575" ht="12.8"></row><row r="1048576" ht="12.8"></row>'
    content = with_sheet_data_appended(MONTHLY.read_bytes(), rows)

    assert read_xlsform(io.BytesIO(content)).survey
    with pytest.raises(UploadTooLarge) as refused:
        checked_workbook(content)
    assert refused.value.reason == "too_many_rows"


def test_an_xlsform_with_a_value_in_a_row_past_the_limit_is_refused() -> None:
    row = '<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    content = with_sheet_data_appended(MONTHLY.read_bytes(), row)

    with pytest.raises(UploadTooLarge) as refused:
        read_xlsform(io.BytesIO(content))
    assert refused.value.reason == "too_many_rows"


def test_an_xlsform_row_styled_across_every_excel_column_reads() -> None:
    """A header row styled out to column XFD: 16,384 empty cells, as some editors write."""
    cells = "".join(f'<c r="{column_letters(n)}2000" s="0"/>' for n in range(1, 16_385))
    content = with_sheet_data_appended(MONTHLY.read_bytes(), f'<row r="2000">{cells}</row>')

    assert read_xlsform(io.BytesIO(content)).survey
    with pytest.raises(UploadTooLarge) as refused:
        checked_workbook(content)  # a roster has at most 64 columns
    assert refused.value.reason in ("too_many_columns", "too_many_elements")


def column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


# --- memory: measured in a process of its own ------------------------------------------------

MEASURE = textwrap.dedent(
    """
    import json, resource, sys, tempfile, time
    from pathlib import Path

    # a run of the old code must fail, not take the machine down
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))
    from server import create_app
    from server.admin.roster import import_roster
    from server.storage.upgrade import upgrade
    from server.admin.xlsform_io import read_xlsform

    kind, path = sys.argv[1], Path(sys.argv[2])
    content = path.read_bytes()
    app = create_app({"DATABASE_URL": "sqlite:///" + tempfile.mkdtemp() + "/z.db",
                      "SECRET_KEY": "x"})
    upgrade(app)
    with app.app_context():
        import_roster(Path(sys.argv[3]).read_bytes(), county="县")  # warm every code path
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        with app.app_context():
            if kind == "roster":
                import_roster(content, county="县")
            else:
                read_xlsform(path)
        answer = "imported"
    except Exception as error:
        answer = getattr(error, "code", type(error).__name__)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"answer": answer, "growth_mb": (peak - baseline) / 1024,
                      "seconds": time.monotonic() - started}))
    """
)


def measured(kind: str, bomb: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(bomb)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(path), str(SAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("kind", ["roster", "xlsform"])
def test_refusing_the_row_bomb_keeps_memory_bounded(
    kind: str, rows_under_the_size_limit: bytes, tmp_path: Path
) -> None:
    result = measured(kind, rows_under_the_size_limit, tmp_path)

    assert result["answer"] == "validation_failed"
    assert result["growth_mb"] < MEMORY_BOUND_MB
    assert result["seconds"] < SECONDS


@pytest.mark.parametrize("kind", ["roster", "xlsform"])
def test_refusing_a_long_cell_keeps_memory_bounded(kind: str, tmp_path: Path) -> None:
    result = measured(kind, one_cell_bomb(40 * MB), tmp_path)

    assert result["answer"] == "validation_failed"
    assert result["growth_mb"] < MEMORY_BOUND_MB
    assert result["seconds"] < SECONDS


def test_a_workbook_member_without_any_xml_tag_is_scanned_not_crashed() -> None:
    """A binary part (printer settings, an image) may hold no ``<`` at all in a chunk."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("xl/printerSettings/printerSettings1.bin", b"\x00\x01binary" * 100)
    assert checked_workbook(raw.getvalue()).getvalue() == raw.getvalue()
