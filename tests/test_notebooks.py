"""The notebooks as stored: no outputs, a parameters cell, the library's public API only."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import pointapp
from pointapp.runbook import NOTEBOOKS, runbook_notebooks
from pointapp.steps import STEPS

STORED = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_available_step_has_its_notebook() -> None:
    assert [p.name for p in STORED] == sorted([p.name for p in runbook_notebooks()] + ["99_teardown.ipynb"])


def test_file_names_and_titles_follow_the_step_list() -> None:
    """Opened in file-name order, the step notebooks come in dependency order: no step before one it needs,
    and each title's step number is its file's number."""
    step_files = [s.notebook for s in STEPS if s.available]
    assert sorted(step_files) == step_files
    position = {s.name: i for i, s in enumerate(STEPS)}
    for step in STEPS:
        assert all(position[need] < position[step.name] for need in step.depends_on), step.name
        title = json.loads((NOTEBOOKS / step.notebook).read_text())["cells"][0]["source"][0]
        assert title.startswith(f"# Step {int(step.notebook.split('_')[0])}: "), (step.notebook, title)


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
def test_stored_without_outputs_and_with_parameters(path: Path) -> None:
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    first = code[0]
    assert "parameters" in first["metadata"].get("tags", [])
    names = {t.id for node in ast.parse("".join(first["source"])).body for t in getattr(node, "targets", [])}
    assert {"env", "config", "region", "endpoint_url", "aws", "profile"} <= names
    assert ({"confirm"} if path.name == "99_teardown.ipynb" else {"apply", "yes"}) <= names
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.rglob("*.ipynb")), ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_stored_with_the_kernel_metadata_jupyterlab_writes_on_open(path: Path) -> None:
    """JupyterLab writes the kernel's spec and language_info into a notebook as its kernel starts: stored as the
    kernel reports them, a freshly opened notebook is not marked modified (tests/test_browser.py opens them).
    The language_info's version is the Python the notebooks were stored with; another Python rewrites it."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    metadata = json.loads(path.read_text())["metadata"]
    assert metadata["kernelspec"] == {"name": "python3", "display_name": spec.display_name, "language": spec.language}
    reported = {key: value for key, value in IPythonKernel.language_info.items() if key != "version"}
    assert {key: value for key, value in metadata["language_info"].items() if key != "version"} == reported
    assert metadata["language_info"]["version"].count(".") == 2


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


def secret_values(endpoint: str) -> list[str]:
    """Every secret the target holds: Secrets Manager values (and their JSON fields) and SecureStrings."""
    import boto3

    kwargs = {"region_name": "ap-northeast-1", "endpoint_url": endpoint}
    values: list[str] = []
    secretsmanager = boto3.client("secretsmanager", **kwargs)
    for secret in secretsmanager.list_secrets()["SecretList"]:
        text = secretsmanager.get_secret_value(SecretId=secret["ARN"]).get("SecretString", "")
        values.append(text)
        try:
            values += [str(v) for v in json.loads(text).values() if len(str(v)) >= 8]
        except (ValueError, AttributeError):
            pass
    ssm = boto3.client("ssm", **kwargs)
    for parameter in ssm.describe_parameters()["Parameters"]:
        if parameter["Type"] == "SecureString":
            values.append(ssm.get_parameter(Name=parameter["Name"], WithDecryption=True)["Parameter"]["Value"])
    return [v for v in values if v]
