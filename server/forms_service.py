"""Form versions on the server (CONTRACT §9): published as ``form`` records that every device
pulls, and used to check the answers of each visit against the version it was filled with.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import select

import forms
from server.models import Form
from server.service import create_server_records, store

FORM_NAMESPACE = uuid.UUID("0c7b9d3e-4f0a-4a55-8f57-6b1d7e2c9a10")


@cache
def registry() -> forms.FormRegistry:
    """Every version of every form shipped in forms/definitions; old versions stay valid forever."""
    return forms.load_definitions()


def form_record_id(form_id: str, version: int) -> str:
    return str(uuid.uuid5(FORM_NAMESPACE, f"{form_id}@{version}"))


def publish_forms(actor: str | None) -> int:
    """Store each form version not stored yet; a published version never changes."""
    with store().engine.connect() as conn:
        known = set(conn.execute(select(Form.id)).scalars())
    items = [
        ("form", form_record_id(v.form_id, v.version), v.to_record_data())
        for v in registry().all_versions()
        if form_record_id(v.form_id, v.version) not in known
    ]
    return create_server_records(items, actor, action="forms_published") if items else 0


def check_answers(
    form_id: str | None, version: int | None, answers: dict[str, Any]
) -> dict[str, list[str]]:
    """Field → message codes; a visit without a form carries no answers to check."""
    if form_id is None:
        return {"_form": ["answers need a form_id"]} if answers else {}
    try:
        form = registry().get(form_id, version or 0)
    except forms.UnknownForm:
        return {"_form": [f"unknown form {form_id} version {version}"]}
    return forms.validate_answers(form, answers)
