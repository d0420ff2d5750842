"""How many real XLSForms Zoufang brings over, and why it refuses the others (issue 15).

Run by hand over folders of .xlsx/.xls files, e.g. pyxform's own test workbooks
(``tests/example_xls`` and ``tests/bug_example_xls`` of github.com/XLSForm/pyxform) and
``tests/samples``:

    .venv/bin/python bench/xlsform_corpus.py DIR [DIR ...] [--json]

For each workbook it asks pyxform itself (its reading and its XForm, ODK Validate off)
whether the form is valid, then imports it as ``zoufang forms import-xlsform`` does
(``server.admin.xlsform_io.convert_workbook``, nothing stored). It prints how many pyxform
accepts, how many Zoufang brings over and what share of their questions (pyxform's
questions, notes and calculations at any depth, the metadata a visit records itself not
counted), and groups every refusal by its reason. Nothing is written; the figures belong in
forms/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyxform.builder import create_survey_element_from_dict  # noqa: E402
from pyxform.xls2json import workbook_to_json  # noqa: E402
from pyxform.xls2json_backends import get_xlsform  # noqa: E402

from forms.xlsform import _ALIASES, _METADATA, XLSFormError  # noqa: E402
from server.admin.uploads import UploadTooLarge  # noqa: E402
from server.admin.xlsform_io import convert_workbook  # noqa: E402

SUFFIXES = (".xlsx", ".xls")


def pyxform_questions(path: Path) -> int | None:
    """The questions of a form pyxform accepts, or None when pyxform refuses it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = get_xlsform(str(path))
            survey = workbook_to_json(
                workbook_dict=data, fallback_form_name=data.fallback_form_name, warnings=[]
            )
            create_survey_element_from_dict(survey).to_xml(validate=False, warnings=[])
    except Exception:  # pyxform refuses by raising, not always its own exception type
        return None
    return _count(survey.get("children") or [])


def _count(nodes: list[Any]) -> int:
    total = 0
    for node in nodes:
        kind = _ALIASES.get(node.get("type", ""), node.get("type", ""))
        if (
            kind == "group"
            and node.get("name") == "meta"
            and node.get("control", {}).get("bodyless")
        ):
            continue
        if kind in ("group", "repeat", "loop"):
            total += _count(node.get("children") or [])
        elif kind not in _METADATA:
            total += 1
    return total


def _fields(docs: list[Any]) -> int:
    """The fields of a definition at any depth, a repeat itself not counted (CONTRACT §9)."""
    return sum(_fields(d["fields"]) if d["type"] == "repeat" else 1 for d in docs)


def reason(message: str) -> str:
    """A problem's message without its particulars, so that problems group by kind."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", message)
    text = re.sub(r"\$\{[^}]*\}", "${…}", text)
    return text.split(". ")[0].split(": use")[0][:110]


def measure(paths: list[Path]) -> dict[str, Any]:
    rows = []
    reasons: Counter[str] = Counter()
    for path in paths:
        questions = pyxform_questions(path)
        row: dict[str, Any] = {"file": path.name, "pyxform": questions is not None}
        try:
            doc = convert_workbook(path)
            fields = _fields(doc["versions"][0]["fields"])  # inside repeats too
            row["zoufang_fields"] = fields
            row["brought_over"] = fields  # pyxform counts or_other's question too
        except (XLSFormError, UploadTooLarge) as error:
            problems = getattr(error, "problems", None) or [str(error)]
            row["refused"] = [str(p) for p in problems]
            for kind in {reason(getattr(p, "message", str(p))) for p in problems}:
                reasons[kind] += questions is not None
        row["questions"] = questions
        rows.append(row)
    accepted = [r for r in rows if r["pyxform"]]
    over = [r for r in accepted if "refused" not in r]
    complete = [r for r in over if r["brought_over"] >= r["questions"]]
    # issue 15's target: brought over with at least 95 % of their questions
    nearly = [r for r in over if r["brought_over"] >= 0.95 * r["questions"]]
    return {
        "workbooks": len(rows),
        "pyxform_accepts": len(accepted),
        "zoufang_brings_over": len(over),
        "with_all_questions": len(complete),
        "with_95_percent_of_questions": len(nearly),
        "questions_in_accepted": sum(r["questions"] for r in accepted),
        "questions_brought_over": sum(min(r["brought_over"], r["questions"]) for r in over),
        "refusals_of_accepted_forms_by_reason": dict(reasons.most_common()),
        "files": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true", help="print every file's result")
    args = parser.parse_args()
    paths = sorted(
        p for folder in args.folders for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES
    )
    result = measure(paths)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    share = result["questions_brought_over"] / max(result["questions_in_accepted"], 1)
    print(f"workbooks: {result['workbooks']}")
    print(f"pyxform accepts: {result['pyxform_accepts']}")
    print(
        f"Zoufang brings over: {result['zoufang_brings_over']} "
        f"({result['with_all_questions']} with all their questions, "
        f"{result['with_95_percent_of_questions']} with at least 95 % of them; "
        f"{share:.0%} of the questions of the forms pyxform accepts)"
    )
    print("refusals of forms pyxform accepts, by reason (forms):")
    for kind, count in result["refusals_of_accepted_forms_by_reason"].items():
        print(f"  {count:>3}  {kind}")


if __name__ == "__main__":
    main()
