"""A step run before the steps it needs stops before any change, with one line naming the notebook to run first:
in the library (``plan``/``up`` with ``only``), the CLI (``up --only``, ``plan --only``) and the notebooks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pointapp
from pointapp import cli
from pointapp.errors import DependencyError, PointappError
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import make_context
from tests.test_discovery import reads

#: What the service needs, in step-list order.
SERVICE_NEEDS = "network,endpoints,registry,database,cache,mail"
ON_EMPTY = ("the service needs the network: run 01_network.ipynb first "
            "(also missing: endpoints, registry, database, cache, mail)")


def test_the_service_waits_for_each_step_it_needs_in_turn(ctx: Context) -> None:
    with pytest.raises(DependencyError, match=f"^{re.escape(ON_EMPTY)}$") as refused:
        pointapp.up(ctx, only="service")
    assert ctx.mutating_calls == []
    assert refused.value.step == "service" and refused.value.notebook == "01_network.ipynb"
    assert refused.value.missing == SERVICE_NEEDS.split(",")

    pointapp.up(ctx, only="network")
    before = len(ctx.calls)
    with pytest.raises(DependencyError, match=r"^the service needs the endpoints: run 04_endpoints.ipynb first "
                                              r"\(also missing: registry, database, cache, mail\)$"):
        pointapp.plan(ctx, only="service")
    assert [c for c in ctx.calls[before:] if c.mutating] == []

    pointapp.up(ctx, only="endpoints,registry,database,cache,mail")
    outcome = pointapp.up(ctx, only="service")  # all it needs is there: it proceeds
    assert outcome.applied and pointapp.plan(ctx, only="service").empty
    # The check reads what the service reads anyway: one discovery of each step, as a plan of all of them makes.
    before = len(ctx.calls)
    pointapp.plan(ctx, only="service")
    checked = reads(ctx.calls[before:])
    before = len(ctx.calls)
    pointapp.plan(ctx, only=f"{SERVICE_NEEDS},service")
    assert checked == reads(ctx.calls[before:])

    # A setting of a step the service needs changes after the build: that step is drifted, and named.
    fewer = make_context(load_spec("prod", {"registry": {"keep_images": 10}}))
    line = "the service needs the registry, which has 1 change pending: run 05_registry.ipynb first"
    before = len(fewer.calls)
    with pytest.raises(DependencyError, match=f"^{re.escape(line)}$"):
        pointapp.up(fewer, only="service")
    assert [c for c in fewer.calls[before:] if c.mutating] == []
    warned = pointapp.plan(fewer, only="service", dependencies="warn")
    assert warned.unready == line and warned.empty
    assert pointapp.plan(fewer, only="registry,service").changes  # planned with it, the registry is not a dependency
    assert pointapp.plan(fewer).steps  # and without --only nothing is refused


def test_a_dependency_of_a_dependency_is_needed_too(ctx: Context) -> None:
    pointapp.up(ctx, only="registry")
    with pytest.raises(DependencyError, match=r"^the delivery needs the network: run 01_network.ipynb first "
                                              r"\(also missing: endpoints, database, cache, mail, service\)$"):
        pointapp.plan(ctx, only="delivery")
    with pytest.raises(DependencyError, match=r"^the endpoints need the network: run 01_network.ipynb first "
                                              r"\(also missing: database, cache, mail, service\)$"):
        pointapp.plan(ctx, only="endpoints,delivery")  # the first selected step that needs it is named


def test_a_step_that_needs_nothing_is_never_refused(ctx: Context) -> None:
    assert pointapp.plan(ctx, only="registry").changes
    assert pointapp.plan(ctx, only="mail").unready == ""


def _capture_context(monkeypatch: pytest.MonkeyPatch) -> list[Context]:
    """The contexts the CLI connects, to count their mutating calls."""
    import pointapp.target

    made: list[Context] = []
    connect = pointapp.target.connect

    def recording(*args: Any, **kwargs: Any) -> Context:
        made.append(connect(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(pointapp.target, "connect", recording)
    return made


def test_cli_up_only_refuses_and_plan_only_warns(server: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    made = _capture_context(monkeypatch)
    assert cli.main(["up", "--only", "service", "--endpoint-url", server]) == cli.EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.err == f"pointapp: error: {ON_EMPTY}\n"
    assert "Plan:" not in captured.out and made[0].mutating_calls == []

    assert cli.main(["plan", "--only", "service", "--endpoint-url", server]) == cli.EXIT_CHANGES
    captured = capsys.readouterr()
    assert captured.err == f"pointapp: warning: {ON_EMPTY}\n"
    assert "Plan: " in captured.out and made[1].mutating_calls == []

    assert cli.main(["plan", "--only", "network", "--endpoint-url", server]) == cli.EXIT_CHANGES
    assert capsys.readouterr().err == ""  # the network needs nothing


def test_cli_up_only_is_one_line_without_traceback(server: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pointapp", "up", "--only", "service", "--endpoint-url", server],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr == f"pointapp: error: {ON_EMPTY}\n" and "Traceback" not in result.stdout


def test_a_step_notebook_before_its_dependencies_fails_with_one_line(server: str, tmp_path: Path) -> None:
    """``runbook --steps service`` on an empty target: papermill marks 09_service failed, its plan cell shows
    the one line (no traceback), and nothing was built."""
    from pointapp.runbook import run_runbook

    with pytest.raises(PointappError, match=r"^09_service.ipynb failed in cell \d+: DependencyError: "
                                            r"the service needs the network: run 01_network.ipynb first "
                                            r"\(also missing: .*\); run the runbook with the steps it needs "
                                            r"\(in --steps, or --from an earlier step\)$"):
        run_runbook(endpoint_url=server, steps="service", output=tmp_path, say=lambda _: None)
    (record,) = tmp_path.iterdir()
    summary = json.loads((record / "summary.json").read_text())
    assert [(n["notebook"], n["status"]) for n in summary["notebooks"]] == [
        ("00_start_here.ipynb", "done"), ("09_service.ipynb", "failed")]
    executed = json.loads((record / "09_service.ipynb").read_text())
    errors = [output for cell in executed["cells"] for output in cell.get("outputs", []) if output["output_type"] == "error"]
    assert [(e["ename"], e["evalue"], e["traceback"]) for e in errors] == [
        ("DependencyError", ON_EMPTY, [f"error: {ON_EMPTY}"])]
    with pointapp.connect(endpoint_url=server, progress=lambda _: None) as ctx:
        states = {row[0]: row[1] for row in pointapp.status(ctx).rows}
    assert set(states.values()) <= {"not built", "nothing to build"}, states
