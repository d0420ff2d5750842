"""STYLE: sync/ and forms/ are pure standard library; dependencies point one way."""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED_FIRST_PARTY = {"sync": {"sync"}, "forms": {"forms"}}
#: mutmut (bench/mutation.py) runs the tests on copies of sync/ and forms/ that import its
#: trampoline; it names the mutant under test in this variable
MUTATION_RUNNER = {"mutmut"} if "MUTANT_UNDER_TEST" in os.environ else set()


def imported_modules(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_the_sync_core_imports_only_the_standard_library_and_itself():
    outside = imported_modules("sync") - set(sys.stdlib_module_names) - {"__future__", "sync"}
    outside -= MUTATION_RUNNER
    assert outside == set()


def test_forms_imports_only_the_standard_library_and_itself():
    outside = imported_modules("forms") - set(sys.stdlib_module_names) - {"__future__", "forms"}
    outside -= MUTATION_RUNNER
    assert outside == set()


def test_neither_core_package_knows_the_server():
    assert "server" not in imported_modules("sync") | imported_modules("forms")
