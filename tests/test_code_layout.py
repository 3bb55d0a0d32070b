"""The code's layout rules (issue 14): small modules, and no module reaching into another's
private names. Read from the source with ``ast``, so they hold for code no test runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "workbench"
MAX_LINES = 400
MODULES = sorted(ROOT.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_module_over_the_line_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT.parent)} has {lines} lines (> {MAX_LINES})"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_import_of_another_modules_private_name(path):
    tree = ast.parse(path.read_text())
    imported_modules: set[str] = set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = path.parent
            for _ in range(max(node.level - 1, 0)):
                base = base.parent
            if node.module:
                base = base.joinpath(*node.module.split("."))
            for alias in node.names:
                # A private module of the package (``from . import _cg``) is fine: its
                # public names are what is used. A private name inside a module is not.
                is_module = (base / f"{alias.name}.py").exists() or (base / alias.name).is_dir()
                if _private(alias.name) and not (node.level and is_module):
                    bad.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                else:  # a module imported by name: remember it for attribute access below
                    imported_modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench"):
                    imported_modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id in imported_modules
                and node.value.id not in ("self", "cls")):
            bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, f"{path.relative_to(ROOT.parent)} uses private names of other modules: {bad}"
