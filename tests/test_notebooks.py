"""The notebooks as stored: no outputs, a parameters cell, the library's public API only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import pointapp
from pointapp.runbook import NOTEBOOKS, runbook_notebooks

STORED = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_available_step_has_its_notebook() -> None:
    assert [p.name for p in STORED] == sorted(p.name for p in runbook_notebooks())


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
def test_stored_without_outputs_and_with_parameters(path: Path) -> None:
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    first = code[0]
    assert "parameters" in first["metadata"].get("tags", [])
    names = {t.id for node in ast.parse("".join(first["source"])).body for t in getattr(node, "targets", [])}
    assert {"env", "config", "region", "endpoint_url", "aws", "profile", "apply", "yes"} <= names
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
def test_notebooks_use_only_the_public_api(path: Path) -> None:
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pointapp":
                assert node.attr in pointapp.__all__, f"{path.name}: pointapp.{node.attr} is not public"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pointapp"):
                assert node.module in ("pointapp", "pointapp.steps"), f"{path.name}: imports {node.module}"
