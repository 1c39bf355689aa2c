"""The runbook's record: summary, failure and resume, secrets kept out, selection of steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from pointapp.errors import PointappError, SpecError
from pointapp.runbook import run_runbook, runbook_notebooks, scan_record


def test_selection_of_notebooks() -> None:
    names = [p.name for p in runbook_notebooks(steps=["network", "registry"])]
    assert names == ["00_start_here.ipynb", "01_network.ipynb", "05_registry.ipynb"]
    names = [p.name for p in runbook_notebooks(start="delivery")]
    assert names[:2] == ["00_start_here.ipynb", "10_delivery.ipynb"] and "01_network.ipynb" not in names
    with pytest.raises(SpecError, match="--from: step 'nowhere' is not in this run"):
        runbook_notebooks(start="nowhere")


def test_scan_finds_a_leaked_value(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_text('{"outputs": ["the password is hunter2-long"]}')
    (tmp_path / "b.md").write_text("nothing here")
    assert scan_record(tmp_path, ["hunter2-long", "short"]) == ["a.ipynb"]
    assert scan_record(tmp_path, ["absent-value"]) == []


def test_a_failure_stops_the_run_and_resume_completes_it(server: str, tmp_path: Path) -> None:
    ecr = boto3.client("ecr", region_name="ap-northeast-1", endpoint_url=server)
    ecr.create_repository(repositoryName="point-app-prod/api")  # not pointapp's: the registry step cannot create its own
    with pytest.raises(PointappError, match=r"05_registry.ipynb failed in cell \d+: StepError: step registry: "
                                            r"ecr-repository point-app-prod/api: .* run `pointapp runbook --resume "):
        run_runbook(endpoint_url=server, steps="network,registry", output=tmp_path,
                    extra={"github_token": "ghp_secret-never-recorded-42"})
    (record,) = tmp_path.iterdir()
    summary = json.loads((record / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert [(n["notebook"], n["status"]) for n in summary["notebooks"]] == [
        ("00_start_here.ipynb", "done"), ("01_network.ipynb", "done"), ("05_registry.ipynb", "failed")]
    assert "RepositoryAlreadyExists" in summary["notebooks"][2]["error"]
    assert summary["secret_parameters"] == ["github_token"] and "github_token" not in summary["parameters"]
    ecr.delete_repository(repositoryName="point-app-prod/api")
    assert run_runbook(resume=record) == record
    summary = json.loads((record / "summary.json").read_text())
    assert summary["status"] == "succeeded"
    assert [n["status"] for n in summary["notebooks"]] == ["done", "done", "done"]
    assert summary["resources"]["network"] == 31 and summary["resources"]["registry"] == 1
    assert (record / "architecture-live.png").exists() and (record / "summary.md").exists()
    for path in record.iterdir():
        if path.suffix in (".ipynb", ".json", ".md"):
            assert "ghp_secret-never-recorded-42" not in path.read_text()


def test_resume_needs_a_record(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--resume: .* is not a run record"):
        run_runbook(resume=tmp_path)


def test_secret_parameters_reach_notebooks_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pointapp.runbook import SECRET_ENV_PREFIX, _split_secrets, secret_parameter

    plain, secret = _split_secrets({"env": "prod", "github_token": "t0ken-value", "db_password": "p4ss-value"})
    assert plain == {"env": "prod"} and secret == {"github_token": "t0ken-value", "db_password": "p4ss-value"}
    monkeypatch.setenv(SECRET_ENV_PREFIX + "GITHUB_TOKEN", "t0ken-value")
    assert secret_parameter("github_token") == "t0ken-value" and secret_parameter("absent", "x") == "x"


def test_the_runbook_runs_the_japanese_notebooks(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pointapp import cli

    assert cli.main(["runbook", "--endpoint-url", server, "--steps", "registry", "--language", "ja",
                     "-o", str(tmp_path)]) == 0
    (record,) = tmp_path.iterdir()
    summary = json.loads((record / "summary.json").read_text())
    assert summary["language"] == "ja" and summary["status"] == "succeeded"
    assert [(n["notebook"], n["status"]) for n in summary["notebooks"]] == [
        ("00_start_here.ipynb", "done"), ("05_registry.ipynb", "done")]
    assert summary["resources"]["registry"] == 1
    assert "- notebooks' language: ja" in (record / "summary.md").read_text()
    executed = json.loads((record / "05_registry.ipynb").read_text(encoding="utf-8"))
    assert executed["cells"][0]["source"][0] == "# ステップ 5: コンテナレジストリ\n"
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "created ecr-repository point-app-prod/api" in printed and "No changes" in printed  # English output


def test_the_languages_of_the_notebooks() -> None:
    from pointapp import cli
    from pointapp.runbook import LANGUAGES, NOTEBOOKS, notebooks_for

    assert notebooks_for("en") == NOTEBOOKS and notebooks_for("ja") == NOTEBOOKS / "ja"
    assert all(p.exists() for p in runbook_notebooks(notebooks_for("ja")))
    with pytest.raises(SpecError, match="--language: 'fr' is not a language of the notebooks; allowed: en, ja"):
        notebooks_for("fr")
    parser = cli.build_parser()
    assert parser.parse_args(["runbook"]).language == "en"
    assert all(parser.parse_args(["runbook", "--language", language]).language == language for language in LANGUAGES)
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["runbook", "--language", "fr"])
    assert refused.value.code == cli.EXIT_ERROR


def test_the_notebook_libraries_compile_no_iri_grammar_on_import() -> None:
    """papermill and nbformat validate notebooks with jsonschema; from 4.25 its format checkers import
    rfc3987-syntax, which compiles its grammars on import (2.5 s of CPU per process): pyproject.toml keeps
    jsonschema below it, and a fresh process reading notebooks loads no such module."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, papermill, nbformat.validator; "
                             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rfc3987_syntax', 'lark')))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"importing papermill loads {loaded}"
