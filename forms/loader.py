"""The form versions a server or test works with, read from ``definitions/*.json``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forms.definition import DefinitionError, parse_definition
from forms.model import FormVersion

DEFINITIONS = Path(__file__).parent / "definitions"


class UnknownForm(LookupError):
    """A form id, or a version of it, that no definition holds."""

    def __init__(self, form_id: str, version: int | None = None) -> None:
        which = form_id if version is None else f"{form_id} version {version}"
        super().__init__(f"unknown form {which}")
        self.form_id = form_id
        self.version = version


class FormRegistry:
    """Every version of every form; a visit's ``form_id`` and ``form_version`` find its form."""

    def __init__(self, versions: Iterable[FormVersion]) -> None:
        self._versions = {(form.form_id, form.version): form for form in versions}

    def get(self, form_id: str, version: int) -> FormVersion:
        """The version a visit was filled with; old versions stay valid forever."""
        try:
            return self._versions[(form_id, version)]
        except KeyError:
            raise UnknownForm(form_id, version) from None

    def latest(self, form_id: str) -> FormVersion:
        """The version new visits are filled with."""
        versions = [form for (fid, _), form in self._versions.items() if fid == form_id]
        if not versions:
            raise UnknownForm(form_id)
        return max(versions, key=lambda form: form.version)

    def all_versions(self) -> list[FormVersion]:
        """Every form version, ordered by form id then version (the records phones pull)."""
        return [self._versions[key] for key in sorted(self._versions)]


def load_definitions(directory: Path | None = None) -> FormRegistry:
    """Read and check every definition file; raises DefinitionError listing every mistake."""
    folder = DEFINITIONS if directory is None else directory
    if not folder.is_dir():
        raise FileNotFoundError(f"no form definitions folder at {folder}")
    versions: list[FormVersion] = []
    errors: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            versions += _read_definition(path)
        except DefinitionError as error:
            errors += [f"{path.name}: {message}" for message in error.errors]
    if errors:
        raise DefinitionError(errors)
    return FormRegistry(versions)


def _read_definition(path: Path) -> list[FormVersion]:
    """The versions of one file, whose name must be its form id."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except ValueError as error:
        raise DefinitionError([f"not valid JSON: {error}"]) from None
    versions = parse_definition(doc)
    if doc["form_id"] != path.stem:
        raise DefinitionError([f"form_id '{doc['form_id']}' differs from the file name"])
    return versions


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused: the json module would keep the last one."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"repeated key {key!r}")
        seen.add(key)
    return dict(pairs)
