"""Writes the XLSForm samples the tests import: ``python tests/samples/make_xlsforms.py``.

- ``xlsform_monthly_monitoring.xlsx``: the monthly monitoring survey as a county would lay it
  out in Excel for KoBo, ODK-style, with Chinese and English labels: groups, yes/no and other
  selects, relevant, required, constraints and the metadata rows KoBo adds. Imported, it is
  version 2 of ``monthly_monitoring``: it makes ``risk_types`` and ``measure_note`` required,
  which version 1 did not.
- ``xlsform_unsupported.xlsx``: a form pyxform accepts, with one row for each thing a
  Zoufang form cannot hold yet (rows 6, 8, 11, 12, 13), between rows it brought over once
  they were written (a repeat, a barcode, a choice filter with ``!=``, audio).

The files are byte-for-byte the same on every run (fixed zip times and document properties),
so a test can check the committed samples are what this script writes.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
ZIP_TIME = (2026, 1, 1, 0, 0, 0)
FIXED_TIME = "2026-01-01T00:00:00Z"

LABELS = ["label::Chinese (zh)", "label::English (en)"]

MONTHLY_SURVEY: list[list[Any]] = [
    ["type", "name", *LABELS, "hint::Chinese (zh)", "hint::English (en)", "required",
     "relevant", "constraint", "constraint_message::Chinese (zh)", "default", "appearance",
     "problem_when", "problem_category"],
    ["start", "start"],
    ["end", "end"],
    ["today", "today"],
    ["begin_group", "income", "收入情况", "Income", None, None, None, None, None, None, None,
     "field-list"],
    ["select_one yes_no", "income_changed", "收入是否明显变化", "Has income changed markedly",
     None, None, "yes", None, None, None, "no"],
    ["text", "income_change_note", "收入变化情况", "How income changed", "变化原因和大致金额",
     "Why, and roughly how much", "yes", "${income_changed} = 'yes'"],
    ["decimal", "monthly_income", "家庭月人均收入（元）", "Monthly income per person (yuan)",
     None, None, "yes", None, ". >= 0 and . <= 100000", "收入应在 0 到 100000 元之间"],
    ["integer", "workers", "家中务工人数", "People in work", None, None, None, None,
     ". >= 0 and . <= 20"],
    ["end_group"],
    ["begin_group", "risk", "风险研判", "Risk"],
    ["select_one risk_level", "risk_level", "返贫致贫风险", "Risk of (returning to) poverty",
     None, None, "yes", None, None, None, None, "minimal", "${risk_level} = 'high'", "income"],
    ["select_multiple risk_kinds", "risk_types", "风险类型", "Kinds of risk", None, None,
     "yes", "${risk_level} = 'medium' or ${risk_level} = 'high'"],
    ["text", "risk_other", "其他风险", "Other risk", None, None, "yes",
     "selected(${risk_types}, 'other')"],
    ["text", "risk_combined", "多重风险说明", "How the risks add up", None, None, None,
     "count-selected(${risk_types}) >= 2"],
    ["end_group"],
    [],
    ["begin_group", "measures", "帮扶措施", "Help measures"],
    ["select_one yes_no", "measures_reviewed", "帮扶措施是否落实",
     "Are the help measures carried out", None, None, None, None, None, None, "yes"],
    ["select_one yes_no", "new_measure_needed", "是否需要新增帮扶措施",
     "Is a new help measure needed", None, None, None, None, None, None, "no"],
    ["text", "measure_note", "需要什么帮扶措施", "Which help measure is needed", None, None,
     "yes", "${new_measure_needed} = 'yes'"],
    ["date", "next_visit", "下次走访日期", "Date of the next visit", None, None, None,
     "${risk_level} != 'low'"],
    ["image", "home_photo", "住房照片", "Photo of the home", "如措施未落实请拍照",
     "If measures are not carried out", None, "not(${measures_reviewed} = 'yes')"],
    ["end_group"],
    ["acknowledge", "confirmed", "已与户主核实以上信息",
     "Confirmed with the head of household", None, None, "yes"],
]  # fmt: skip

MONTHLY_CHOICES: list[list[Any]] = [
    ["list_name", "name", *LABELS],
    ["yes_no", "yes", "是", "Yes"],
    ["yes_no", "no", "否", "No"],
    [],
    ["risk_level", "low", "低", "Low"],
    ["risk_level", "medium", "中", "Medium"],
    ["risk_level", "high", "高", "High"],
    [],
    ["risk_kinds", "illness", "因病", "Illness"],
    ["risk_kinds", "disability", "因残", "Disability"],
    ["risk_kinds", "education", "因学", "Schooling costs"],
    ["risk_kinds", "disaster", "因灾", "Disaster"],
    ["risk_kinds", "accident", "因意外", "Accident"],
    ["risk_kinds", "unemployment", "失业", "Unemployment"],
    ["risk_kinds", "other", "其他", "Other"],
]

MONTHLY_SETTINGS: list[list[Any]] = [
    ["form_title", "form_id", "version", "default_language"],
    ["监测户/边缘户月监测", "monthly_monitoring", "2026110101", "Chinese (zh)"],
]

UNSUPPORTED_SURVEY: list[list[Any]] = [
    ["type", "name", *LABELS, "relevant", "constraint", "calculation", "choice_filter",
     "default"],
    ["text", "head_name", "户主姓名", "Head of household"],  # row 2
    ["begin_repeat", "members", "家庭成员", "Members"],  # row 3: a repeat (brought over now)
    ["text", "member_name", "成员姓名", "Member's name"],
    ["end_repeat"],
    ["calculate", "yearly_income", None, None, None, None, "once(${age} * 12)"],  # row 6
    ["barcode", "id_card", "身份证条码", "ID card barcode"],  # row 7 (brought over now)
    ["integer", "age", "年龄", "Age", None, "regex(., '^(?=[0-9])')"],  # row 8: lookahead
    ["select_one village", "village", "村", "Village", None, None, None,
     "name != 'xia'"],  # row 9: choice_filter (brought over now)
    ["audio", "voice", "录音", "Recording"],  # row 10 (brought over now)
    ["select_one_from_file villages.csv", "village_b", "村", "Village"],  # row 11
    ["text", "remark", "备注", "Remark", None, None, None, None,
     "${last-saved#head_name}"],  # row 12
    ["integer", "elderly", "老人数", "Elderly", "pow(${age}, 2) > 60"],  # row 13: pow()
]  # fmt: skip

UNSUPPORTED_CHOICES: list[list[Any]] = [
    ["list_name", "name", *LABELS, "township"],
    ["village", "shang", "上村", "Upper village", "east"],
    ["village", "xia", "下村", "Lower village", "west"],
]

UNSUPPORTED_SETTINGS: list[list[Any]] = [["form_id"], ["household_survey"]]

SAMPLES = {
    "xlsform_monthly_monitoring.xlsx": {
        "survey": MONTHLY_SURVEY,
        "choices": MONTHLY_CHOICES,
        "settings": MONTHLY_SETTINGS,
    },
    "xlsform_unsupported.xlsx": {
        "survey": UNSUPPORTED_SURVEY,
        "choices": UNSUPPORTED_CHOICES,
        "settings": UNSUPPORTED_SETTINGS,
    },
}


def workbook_bytes(sheets: dict[str, list[list[Any]]]) -> bytes:
    """The .xlsx of these sheets, the same bytes on every run."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    raw = io.BytesIO()
    workbook.save(raw)
    return _deterministic(raw.getvalue())


def _deterministic(xlsx: bytes) -> bytes:
    """openpyxl stamps the zip entries and docProps/core.xml with the time of saving."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = re.sub(
                    r"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                    rf"\g<1>{FIXED_TIME}",
                    data.decode(),
                )
                data = text.encode()
            entry = zipfile.ZipInfo(info.filename, ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    return out.getvalue()


def write_samples(folder: Path = HERE) -> list[Path]:
    paths = []
    for name, sheets in SAMPLES.items():
        path = folder / name
        path.write_bytes(workbook_bytes(sheets))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
