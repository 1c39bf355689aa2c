"""The shared emulator: one background moto server that separate processes (commands, notebook kernels) find
and reuse, started once even when several start at the same time, shown and stopped by ``pointapp emulator``.

Each test has a state folder and a port of its own and stops what it started.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pointapp import cli, shared_emulator
from pointapp.emulator import Emulator
from pointapp.errors import TargetError
from tests.conftest import shared_emulator_environment
from tests.test_cli import one_line_error, run

pytestmark = pytest.mark.usefixtures("shared")


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The shared emulator selected (as with no setting), in a state folder of this test, on a free port; the port.
    Whatever shared emulator the test started is stopped at the end."""
    with shared_emulator_environment(tmp_path / "state") as environ:
        monkeypatch.delenv(shared_emulator.MODE_VARIABLE)
        for name in (shared_emulator.STATE_DIR_VARIABLE, shared_emulator.PORT_VARIABLE):
            monkeypatch.setenv(name, environ[name])
        yield int(environ[shared_emulator.PORT_VARIABLE])


def state() -> dict[str, object]:
    return json.loads(shared_emulator.state_file().read_text())  # type: ignore[no-any-return]


def alive(pid: int) -> bool:
    return shared_emulator._alive(pid)  # noqa: SLF001 - the module's own liveness check (zombies are dead)


KERNEL = """
import pointapp
ctx = pointapp.connect()
print(ctx.target.describe())
print("in sync:", pointapp.plan(ctx, only="registry").empty)
ctx.close()
"""


def test_two_processes_share_one_emulator_that_outlives_them(shared: int) -> None:
    built = run("up", "--only", "registry")
    assert built.returncode == 0, built.stderr
    assert f"Starting the shared emulator on 127.0.0.1:{shared}" in built.stdout
    pid = int(state()["pid"])  # type: ignore[call-overload]
    url = f"http://127.0.0.1:{shared}"
    assert (f"on shared emulator {url} (pid {pid}; keeps its state until `pointapp emulator --stop`), "
            "region ap-northeast-1") in built.stdout
    # another process, as a notebook kernel: it finds the same emulator and what the first built
    kernel = subprocess.run([sys.executable, "-c", KERNEL], capture_output=True, text=True, timeout=120)
    assert kernel.returncode == 0, kernel.stderr
    assert f"shared emulator {url} (pid {pid};" in kernel.stdout and "in sync: True" in kernel.stdout
    assert "Starting" not in kernel.stdout
    shown = run("emulator", "--status")
    assert shown.returncode == 0, shown.stderr
    assert f"The shared emulator is running at {url} (pid {pid}, running since 20" in shown.stdout


STARTER = "from pointapp import shared_emulator; print(shared_emulator.ensure(say=lambda _: None).pid)"


def test_first_starts_at_the_same_time_end_with_one_emulator() -> None:
    starters = [subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    pids = {int(starter.communicate(timeout=120)[0]) for starter in starters}
    try:
        assert len(pids) == 1 and pids == {state()["pid"]}
        assert all(alive(pid) for pid in pids)
    finally:
        for pid in pids - {state()["pid"]}:
            os.kill(pid, 9)


def test_status_and_stop_say_what_runs_and_exit_as_systemctl_does() -> None:
    none = run("emulator", "--status")
    assert (none.returncode, none.stdout.strip()) == (3, "No shared emulator is running.")
    nothing = run("emulator", "--stop")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "No shared emulator was running: nothing to stop.")
    started = run("emulator", "--start")
    assert started.returncode == 0, started.stderr
    pid, url = int(state()["pid"]), str(state()["url"])  # type: ignore[call-overload]
    assert f"The shared emulator is running at {url} (pid {pid}," in started.stdout
    again = run("emulator", "--start")  # running: reused, not started again
    assert again.returncode == 0 and f"(pid {pid}," in again.stdout and "Starting" not in again.stdout
    assert run("emulator", "--status").returncode == 0
    foreground = run("emulator")  # on the shared emulator's port: said so, nothing started
    assert foreground.returncode == 1
    assert f"the shared emulator already runs on port {state()['port']} (pid {pid})" in one_line_error(foreground)
    stopped = run("emulator", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith(f"Stopped the shared emulator at {url} (pid {pid}, running since ")
    assert not alive(pid) and not shared_emulator.state_file().exists()
    assert run("emulator", "--status").returncode == 3


def write_state(url: str, pid: int, port: int) -> None:
    shared_emulator.state_dir().mkdir(parents=True, exist_ok=True)
    shared_emulator.state_file().write_text(json.dumps({"url": url, "pid": pid, "port": port, "started": "then"}))


def test_a_stale_state_file_is_replaced_and_names_no_process_to_stop(shared: int) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    url = f"http://127.0.0.1:{shared}"
    write_state(url, ended.pid, shared)
    shown = run("emulator", "--status")
    assert shown.returncode == 3
    assert shown.stdout.strip() == f"No shared emulator is running (the state file names pid {ended.pid}, which is no longer the emulator)."
    started = run("emulator", "--start")
    assert started.returncode == 0 and "Starting the shared emulator" in started.stdout, started.stderr
    assert state()["pid"] not in (ended.pid, None) and alive(int(state()["pid"]))  # type: ignore[call-overload]
    # a state file naming a live process that is not the emulator (this test's): --stop leaves that process be
    shared_emulator.stop()
    write_state(url, os.getpid(), shared)
    cleaned = run("emulator", "--stop")
    assert cleaned.returncode == 0
    assert cleaned.stdout.strip().startswith(f"No shared emulator was running: removed the stale state file of {url}")
    assert not shared_emulator.state_file().exists()


def test_a_port_taken_by_another_program_is_one_line_naming_the_port_and_the_setting(shared: int) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", shared))
        busy.listen()
        result = run("plan", "--only", "registry")
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"pointapp: error: port {shared} on 127.0.0.1 is taken by another program, not pointapp's shared emulator: "
        f"set POINTAPP_EMULATOR_PORT to a free port (for example POINTAPP_EMULATOR_PORT={shared + 1})")
    assert not shared_emulator.state_file().exists()
    with Emulator(port=shared):  # another emulator there (say a foreground `pointapp emulator`): how to use it
        result = run("emulator", "--start")
    assert result.returncode == 1
    assert one_line_error(result).endswith(f"; to use that emulator instead, pass --endpoint-url http://127.0.0.1:{shared}")


def test_ephemeral_keeps_to_its_own_emulator_and_leaves_the_shared_one_alone() -> None:
    alone = run("up", "--only", "registry", "--ephemeral")
    assert alone.returncode == 0, alone.stderr
    assert "on embedded emulator http://127.0.0.1:" in alone.stdout and "(forgets its state when this process ends)" in alone.stdout
    assert not shared_emulator.state_file().exists()  # no shared emulator was started
    assert run("emulator", "--start").returncode == 0
    before = state()
    assert run("up", "--only", "registry", "--ephemeral").returncode == 0
    shared_plan = run("plan", "--only", "registry")  # the shared emulator holds nothing the ephemeral runs built
    assert shared_plan.returncode == 2 and f"(pid {before['pid']};" in shared_plan.stdout
    assert state() == before


def test_the_runbook_hands_the_shared_emulator_to_its_kernels_and_leaves_it_running(tmp_path: Path) -> None:
    from pointapp.runbook import Summary, run_runbook

    record = run_runbook(steps="registry", output=tmp_path / "runs", say=lambda _: None)
    found = shared_emulator.running()
    assert found is not None
    summary = Summary.read(record)
    assert summary.target.startswith(f"shared emulator {found.url} (pid {found.pid};")
    assert summary.parameters["endpoint_url"] == ""  # found again by its kind on --resume
    executed = (record / "05_registry.ipynb").read_text()
    assert f"on shared emulator {found.url} (pid {found.pid}; keeps its state until" in executed
    after = run("plan", "--only", "registry")
    assert after.returncode == 0 and "No changes" in after.stdout


@pytest.mark.parametrize("command", sorted(cli.build_parser().commands))
def test_an_unknown_option_points_to_the_help_of_its_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--endpoint-url", "x", "--no-such-option"])
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert error.endswith(f"(see pointapp {command} --help)\n") and "pointapp pointapp" not in error, error


def test_an_unknown_command_points_to_the_main_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bogus"])
    assert capsys.readouterr().err.endswith("(see pointapp --help)\n")


def test_the_emulator_is_started_within_the_bound_or_the_error_names_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A start that never answers is ended after START_TIMEOUT, with one line naming the log."""
    monkeypatch.setattr(shared_emulator, "START_TIMEOUT", 0.0)
    started = time.monotonic()
    with pytest.raises(TargetError, match=r"did not answer within 0 s; see .*emulator\.log"):
        shared_emulator.ensure(say=lambda _: None)
    assert time.monotonic() - started < 20 and shared_emulator.running() is None


def run_as_in_jupyter(notebook: Path) -> str:
    """Run every cell of ``notebook`` in a kernel of its own, its parameters as stored (nothing injected, as
    "Run All" in JupyterLab does); the text the cells printed."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return "\n".join(str(output.get("text", "")) for cell in nb.cells for output in cell.get("outputs", []))


def test_two_notebooks_in_their_own_kernels_share_one_emulator_with_no_setting(shared: int) -> None:
    """The issue's "done when": nothing configured, two kernels, one emulator (the second sees the first's work)."""
    from pointapp.runbook import NOTEBOOKS

    first = run_as_in_jupyter(NOTEBOOKS / "05_registry.ipynb")
    found = shared_emulator.running()
    assert found is not None and found.port == shared
    said = f"on shared emulator {found.url} (pid {found.pid}; keeps its state until `pointapp emulator --stop`)"
    assert said in first and "Starting the shared emulator" in first
    second = run_as_in_jupyter(NOTEBOOKS / "05_registry.ipynb")
    assert said in second and "Starting" not in second
    assert "No changes: the environment matches the spec." in second, second  # the first kernel's repository


def test_a_failed_runbook_resumes_on_the_shared_emulator_and_replays_only_when_it_was_stopped(tmp_path: Path) -> None:
    import boto3

    from pointapp.errors import PointappError
    from pointapp.runbook import Summary, run_runbook

    def fail() -> Path:  # a repository pointapp does not own stands where the registry step makes its own
        ecr = boto3.client("ecr", region_name="ap-northeast-1", endpoint_url=shared_emulator.ensure(say=lambda _: None).url)
        ecr.create_repository(repositoryName="point-app-prod/api")
        with pytest.raises(PointappError, match="05_registry.ipynb failed"):
            run_runbook(steps="registry", output=tmp_path / "runs", say=lambda _: None)
        return max((tmp_path / "runs").iterdir())

    record = fail()
    boto3.client("ecr", region_name="ap-northeast-1", endpoint_url=shared_emulator.ensure().url).delete_repository(
        repositoryName="point-app-prod/api")
    run_runbook(resume=record, say=lambda _: None)
    summary = Summary.read(record)
    assert (summary.status, [n.status for n in summary.notebooks], summary.notes) == ("succeeded", ["done", "done"], [])
    time.sleep(1)  # the next record's name has the next second
    shared_emulator.stop()
    again = fail()
    shared_emulator.stop()  # what the failed run built is gone with it (the repository in the way too)
    run_runbook(resume=again, say=lambda _: None)
    summary = Summary.read(again)
    assert summary.status == "succeeded" and [n.status for n in summary.notebooks] == ["replayed", "done"]
    assert summary.notes[0].startswith("resumed on a new shared emulator: the steps already done were replayed first")
