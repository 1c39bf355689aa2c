"""The ``pointapp`` command as a user types it, against a moto server (and in-process for real-AWS paths).

Most commands run in this process (:func:`run`: ``cli.main`` with its output captured, as a subprocess would
give it, without a Python start and pointapp's imports for each); the tests about the process itself (what
it imports, its embedded emulator, the exit code and the one-line error the shell sees, the runbook's kernels)
start ``python -m pointapp`` (:func:`shell`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto import mock_aws

from pointapp import cli
from pointapp.runbook import runbook_notebooks


def shell(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pointapp args`` in a process of its own, as typed in a shell."""
    return subprocess.run([sys.executable, "-m", "pointapp", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@dataclass
class Ran:
    """What a command run in this process returned and printed (as :class:`subprocess.CompletedProcess`)."""

    returncode: int
    stdout: str
    stderr: str


def run(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``pointapp args`` in this process (``cli.main``), with ``env`` set for it: its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        try:
            code = cli.main(list(args))
        except SystemExit as exited:  # argparse's refusals exit, as the process would
            code = exited.code if isinstance(exited.code, int) else int(exited.code is not None)
    return Ran(code, out.getvalue(), err.getvalue())


def one_line_error(result: Ran | subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    return lines[0]


def test_a_command_imports_only_what_it_uses(server: str) -> None:
    """``plan --only network`` imports no audit, diagram, CloudFormation export, runbook, release or YAML."""
    script = ("import json, sys; from pointapp import cli; code = cli.main(sys.argv[1:]); "
              "print(json.dumps([code, sorted(sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", script, "plan", "--only", "network", "--endpoint-url", server],
                            capture_output=True, text=True, timeout=300)
    code, modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert code == 2, result.stderr
    imported = set(modules)
    unused = {"pointapp.audit", "pointapp.diagram", "pointapp.cloudformation", "pointapp.runbook", "pointapp.release",
              "yaml"}
    assert imported & unused == set()
    assert "pointapp.engine" in imported


def test_plan_up_plan_down_exit_codes(server: str) -> None:
    target = ["--endpoint-url", server]
    first = run("plan", *target)
    assert first.returncode == 2, first.stderr
    planned = re.search(r"Plan: (\d+) to create, 1 to change, 0 to delete.", first.stdout)
    assert planned, first.stdout
    applied = run("up", *target)
    assert applied.returncode == 0, applied.stderr
    assert f"Created {planned[1]}, changed 1, deleted 0, unchanged 0." in applied.stdout
    assert "waiting for NAT gateway point-app-prod-nat-1a" in applied.stdout
    again = run("plan", *target)
    assert again.returncode == 0 and "No changes" in again.stdout
    second_up = run("up", *target)
    assert second_up.returncode == 0 and "No changes" in second_up.stdout
    down = run("down", *target)
    assert down.returncode == 0, down.stderr
    # kept and said why: the prod database (deletion protection) and what it stands on; skipped: what the
    # emulator cannot delete
    assert re.search(r"Created 0, changed \d+, deleted \d+, unchanged 0. Skipped 3, for the reasons given above.",
                     down.stdout)
    assert "Kept on purpose (15):" in down.stdout and "deletion protection is on" in down.stdout
    assert "db-subnet-group point-app-prod-db-subnets: db-instance point-app-prod-mysql (kept) stands on it" in down.stdout
    assert run("plan", *target).returncode == 2
    again = run("down", *target)  # nothing it can delete: what is kept and what the emulator cannot delete, listed
    assert again.returncode == 0 and "Nothing to delete. 15 kept on purpose (=), for the reasons given." in again.stdout
    assert "(3 change(s) the target cannot do are listed as skipped.)" in again.stdout
    assert "(kept: deletion protection is on." in again.stdout
    assert "the emulator does not implement codedeploy DeleteApplication" in again.stdout


def test_endpoint_from_the_environment(server: str) -> None:
    result = run("plan", "--only", "network", env={"AWS_ENDPOINT_URL": server})
    assert result.returncode == 2 and f"endpoint {server}" in result.stdout


def test_embedded_emulator_is_the_default() -> None:
    result = shell("up", "--env", "staging")
    assert result.returncode == 0, result.stderr
    assert "embedded emulator http://127.0.0.1:" in result.stdout
    assert "point-app-staging-vpc" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "--env", "dev"], "--env: unknown environment 'dev'; allowed: prod, staging"),
    (["plan", "--only", "netwrk"], "--only: unknown step 'netwrk'; allowed: network, domain, endpoints"),
    (["plan", "--region", "mars-north-1"], "--region: unknown region 'mars-north-1'"),
    (["plan", "--config", "/nonexistent/pointapp.yaml"], "--config: cannot read /nonexistent/pointapp.yaml"),
    (["plan", "--endpoint-url", "http://127.0.0.1:{port}"], "cannot reach http://127.0.0.1:{port}"),
    (["plan", "--endpoint-url", "not a url"], "--endpoint-url: 'not a url' is not a URL"),
    (["plan", "--aws", "--endpoint-url", "http://127.0.0.1:1"], "cannot be combined"),
    (["plan", "--aws"], "no AWS credentials found"),
    (["plan", "--profile", "nobody"], "--profile: AWS profile 'nobody' not found"),
    (["plan", "--bogus"], "unrecognized arguments: --bogus"),
    (["emulator", "--port", "{busy}"], "cannot start the embedded emulator on 127.0.0.1:{busy}"),
])
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        args = [a.format(port=port, busy=busy_port) for a in args]
        result = run(*args, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
                     if "--aws" in args else None)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message.format(port=port, busy=busy_port) in one_line_error(result)


def test_missing_credentials_on_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = shell("plan", "--aws")
    assert result.returncode == 1
    assert one_line_error(result).startswith("pointapp: error: no AWS credentials found")


def test_bad_config_makes_no_aws_call(tmp_path: Path, server: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("network:\n  vpc_cidr: 10.0.0.0/8\n")
    result = run("up", "--config", str(config), "--endpoint-url", server)
    assert result.returncode == 1
    assert "network.vpc_cidr: 10.0.0.0/8 must have a prefix between /16 and /28" in one_line_error(result)
    assert result.stdout == ""


def test_debug_shows_the_traceback() -> None:
    result = shell("--debug", "plan", "--env", "dev")
    assert result.returncode == 1 and "Traceback" in result.stderr and "SpecError" in result.stderr


def test_real_aws_is_never_changed_without_confirmation(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # mock_aws intercepts the real AWS endpoints in-process, so "--aws" is safe here.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with mock_aws():
        assert cli.main(["up", "--aws", "--only", "network"]) == 1
        assert "refusing to apply these changes on real AWS without confirmation: pass --yes" in capsys.readouterr().err
        assert cli.main(["plan", "--aws", "--only", "network"]) == 2  # nothing was created
        assert cli.main(["up", "--aws", "--yes", "--only", "network"]) == 0
        assert cli.main(["plan", "--aws", "--only", "network"]) == 0
        assert cli.main(["down", "--aws", "--only", "network"]) == 1
        assert cli.main(["down", "--aws", "--yes", "--only", "network"]) == 0


def test_interactive_confirmation(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["no", "yes"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    with mock_aws():
        assert cli.main(["up", "--aws", "--only", "network"]) == 1
        assert "cancelled: nothing was changed" in capsys.readouterr().err
        assert cli.main(["up", "--aws", "--only", "network"]) == 0
        assert cli.main(["plan", "--aws", "--only", "network"]) == 0


def test_runbook_writes_a_record_and_leaves_no_secret_in_any_notebook(tmp_path: Path, server: str) -> None:
    """One runbook run from the command line (a frontend whose token is a SecureString, so that the run
    handles a secret of the user's besides those RDS makes): its record, and no secret value in any executed
    notebook (tests/test_notebooks.py's scan)."""
    import boto3

    from pointapp.audit import CHECKS
    from tests.test_notebooks import secret_values

    boto3.client("ssm", region_name="ap-northeast-1", endpoint_url=server).put_parameter(
        Name="/point-app/github-token", Value="ghp_runbook-token-should-never-show", Type="SecureString")
    config = tmp_path / "spec.yaml"
    config.write_text("frontend:\n  repository: https://github.com/acme/web\n"
                      "  access_token_parameter: /point-app/github-token\n")
    runs = tmp_path / "runs"
    result = shell("runbook", "--endpoint-url", server, "--config", str(config), "-o", str(runs))
    assert result.returncode == 0, result.stderr
    records = list(runs.iterdir())
    assert len(records) == 1 and records[0].name.endswith("-prod")
    notebooks = sorted(p.name for p in runbook_notebooks())
    executed = sorted(records[0].glob("*.ipynb"))
    assert [p.name for p in executed] == notebooks
    assert f"Run record: {records[0]}" in result.stdout
    summary = json.loads((records[0] / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["target"] == f"endpoint {server}, region ap-northeast-1"
    assert sorted(n["notebook"] for n in summary["notebooks"]) == notebooks
    assert all(n["status"] == "done" and n["duration"] > 0 for n in summary["notebooks"])
    assert summary["resources"]["network"] == 31 and summary["resources"]["service"] == 14
    assert (records[0] / "architecture-live.png").exists()
    assert run("plan", "--endpoint-url", server, "--config", str(config)).returncode == 0  # the runbook built it

    secrets = secret_values(server)
    assert "ghp_runbook-token-should-never-show" in secrets and len(secrets) >= 3  # the scan sees real secrets
    for path in executed:
        text = path.read_text()
        leaked = [s[:4] + "..." for s in secrets if s in text]
        assert not leaked, f"{path.name} shows a secret value"
    # the runbook's result passes the audit: every check on built resources, no finding (choices are no findings)
    audit = (records[0] / "90_audit.ipynb").read_text()
    assert f"{len(CHECKS)} checks ({len(CHECKS)} on built resources): 0 findings" in audit


def test_runbook_stops_at_a_failing_notebook(tmp_path: Path, server: str) -> None:
    config = tmp_path / "spec.yaml"
    config.write_text("network: {zones: 2}\n")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from pointapp.errors import PointappError
    from pointapp.runbook import START_HERE, run_runbook

    for name in (START_HERE, "01_network.ipynb"):
        cell = new_code_cell("env = 'prod'")
        cell.metadata["tags"] = ["parameters"]
        body = "raise ValueError('no such thing')" if name != START_HERE else "print('ok')"
        nbformat.write(new_notebook(cells=[cell, new_code_cell(body)],
                                    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                             "language": "python"}}), notebooks / name)
    with pytest.raises(PointappError, match=r"01_network.ipynb failed in cell \d+: ValueError: no such thing"):
        run_runbook(endpoint_url=server, output=tmp_path / "runs", notebooks=notebooks)


def test_deploy_status_rollback_and_export(server: str, tmp_path: Path) -> None:
    target = ["--endpoint-url", server]
    assert run("deploy", "--status", *target).returncode == 1  # nothing built yet: one clear line
    assert run("up", *target).returncode == 0
    image = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:3f2c1a9"
    released = run("deploy", "--image", image, "--wait", *target)
    assert released.returncode == 0, released.stderr
    assert "Registered arn:aws:ecs:ap-northeast-1:123456789012:task-definition/point-app-prod-api:2" in released.stdout
    assert "never runs them" in released.stdout
    deployment = re.search(r"deployment ([0-9a-f-]{36}): Created", released.stdout)
    assert deployment
    status = run("deploy", "--status", *target)
    assert status.returncode == 0 and deployment[1] in status.stdout
    rollback = run("rollback", *target)
    assert rollback.returncode == 0 and "the emulator does not implement codedeploy StopDeployment" in rollback.stdout
    exported = run("export", "delivery", "-o", str(tmp_path / "out"), *target)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / "appspec.yaml").exists() and (tmp_path / "out" / "taskdef.json").exists()


@pytest.mark.parametrize("args", [["deploy"], ["deploy", "--image", "not an image"], ["deploy", "--image", "x:1", "--status"]])
def test_deploy_bad_input(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 1
    one_line_error(result)
    assert result.stdout == ""  # refused before any emulator or AWS call


def test_a_release_on_real_aws_needs_confirmation(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    image = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:v1"
    with mock_aws():
        assert cli.main(["deploy", "--aws", "--image", image]) == 1
        assert "refusing to release" in capsys.readouterr().err
        assert cli.main(["rollback", "--aws"]) == 1
        assert "refusing to roll back" in capsys.readouterr().err


def test_what_the_emulator_cannot_do_is_skipped_in_plan_up_and_down(server: str, tmp_path: Path) -> None:
    """A CodeDeploy update the emulator lacks is shown skipped: plan exits 0, up changes nothing, and a
    down left with only what the emulator cannot delete lists it and ends."""
    where = ("--endpoint-url", server, "--env", "staging")
    assert run("up", *where, "--only", "network,endpoints,registry,database,cache,mail,service,delivery").returncode == 0
    target = (*where, "--only", "registry,service,delivery")  # on the steps they need, left standing
    config = tmp_path / "linear.yaml"
    config.write_text("delivery:\n  deployment_config: CodeDeployDefault.ECSLinear10PercentEvery1Minutes\n")
    planned = run("plan", *target, "--config", str(config))
    assert planned.returncode == 0, planned.stdout
    assert "(skipped: the emulator does not implement codedeploy UpdateDeploymentGroup" in planned.stdout
    assert "1 change(s) the target cannot do are listed as skipped" in planned.stdout
    applied = run("up", *target, "--config", str(config))
    assert applied.returncode == 0 and "No changes" in applied.stdout and "changed 1" not in applied.stdout
    assert run("down", *target).returncode == 0
    again = run("down", *target)
    assert again.returncode == 0 and "Nothing to delete. (2 change(s) the target cannot do" in again.stdout
    assert "codedeploy DeleteDeploymentGroup" in again.stdout
