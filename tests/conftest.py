"""Shared fixtures: dummy credentials, in-process moto for the library, a moto server for the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import StubAssertionError, UnStubbedResponseError
from botocore.stub import Stubber
from moto import mock_aws

from pointapp import shared_emulator
from pointapp.emulator import EMULATOR_CREDENTIALS, Emulator
from pointapp.spec import Spec, load_spec
from pointapp.target import Context, Target
from tests import faults
from tests.aws_behaviour import CONTROL_PATH, AwsBehaviour
from tests.moto_speed import IN_PROCESS, collect_garbage_less_often, lighten_moto, share_event_aliases

REGION = "ap-northeast-1"

lighten_moto()  # moto's reset (each mock_aws test starts and ends with one) only drops state
collect_garbage_less_often()
share_event_aliases()  # each client of each context works out the same event names again

#: The tests never use (nor leave running) the user's shared emulator: its state lives in a folder of this
#: test process, and the embedded per-process emulator is the default, as it was before the shared one
#: (tests of the shared emulator select it, each in a folder of its own). Set here, before any fixture,
#: so every subprocess and kernel the tests start inherits it.
TEST_STATE_DIR = tempfile.mkdtemp(prefix="pointapp-test-state-")
os.environ["POINTAPP_STATE_DIR"] = TEST_STATE_DIR
os.environ["POINTAPP_EMULATOR"] = "ephemeral"


@pytest.fixture(scope="session", autouse=True)
def no_shared_emulator_left() -> Iterator[None]:
    """At the end, a shared emulator that some test started in the tests' state folder by mistake is stopped,
    and the folder removed."""
    yield
    shared_emulator.stop({shared_emulator.STATE_DIR_VARIABLE: TEST_STATE_DIR})
    shutil.rmtree(TEST_STATE_DIR, ignore_errors=True)


@contextlib.contextmanager
def shared_emulator_environment(folder: Path) -> Iterator[dict[str, str]]:
    """An environment for processes (commands, kernels, JupyterLab) that selects the shared emulator, as a
    user's does, with its state in ``folder`` and a free port of its own; at the end, the shared emulator
    started there (if any) is stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {**os.environ, shared_emulator.STATE_DIR_VARIABLE: str(folder), shared_emulator.PORT_VARIABLE: str(port)}
    environ.pop(shared_emulator.MODE_VARIABLE, None)
    try:
        yield environ
    finally:
        shared_emulator.stop(environ)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never real AWS: dummy credentials, no profile, no configured endpoint, a fixed region."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("POINTAPP_STATE_DIR", TEST_STATE_DIR)
    monkeypatch.setenv("POINTAPP_EMULATOR", "ephemeral")


#: AWS managed policies exist on AWS (the bastion attaches the SSM core policy); load them in moto too.
MOTO_CONFIG: Any = {"iam": {"load_aws_managed_policies": True}}


@pytest.fixture
def mocked() -> Iterator[None]:
    with mock_aws(config=MOTO_CONFIG):
        yield


def make_context(spec: Spec | None = None, **kwargs: Any) -> Context:
    """A context over in-process moto (call inside ``mock_aws``); progress lines are collected."""
    lines: list[str] = []
    kwargs.setdefault("emulated", True)
    ctx = Context(spec=spec or load_spec("prod"), target=Target("endpoint", REGION, None),
                  session=boto3.Session(region_name=REGION), progress=lines.append, **kwargs)
    ctx.lines = lines  # type: ignore[attr-defined]
    return ctx


@pytest.fixture
def ctx(mocked: None) -> Context:
    return make_context()


ROOT = Path(__file__).resolve().parents[1]
#: The emulator as pointapp ships it (plain moto).
PLAIN_MOTO_SERVER = [sys.executable, "-m", "pointapp", "emulator", "--port", "0"]
#: The emulator with the AWS-behaviour layer on (tests/aws_behaviour.py). Its windows ("for a while") last
#: 0.5 s: every rule still fires and is waited out, at a quarter of the default wait per fault run.
AWS_LIKE_SERVER = [sys.executable, "-m", "tests.aws_server", "--port", "0", "--window", "0.5"]
#: The server the CLI, runbook and release tests run against.
MOTO_SERVER_COMMAND = AWS_LIKE_SERVER


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One emulator process (:data:`MOTO_SERVER_COMMAND`) for the CLI and notebook tests; returns its URL."""
    process = subprocess.Popen(MOTO_SERVER_COMMAND, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    assert first.startswith("Emulator running at "), first
    url = first.rsplit(" ", 1)[1]
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def server(moto_server: str) -> str:
    """The moto server, emptied before the test."""
    reset_emulator(moto_server)
    return moto_server


def reset_emulator(url: str) -> None:
    """Empty the emulator (moto's reset; the AWS-behaviour layer forgets its state with it)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


@dataclass
class AwsLikeServer:
    """The in-process emulator with the AWS-behaviour layer in front: its URL and the layer."""

    url: str
    layer: AwsBehaviour


def embedded_aws_like(window: float | None = None) -> Iterator[AwsLikeServer]:
    """An embedded emulator in this process with the AWS-behaviour layer on (any free port; windows of
    ``window`` seconds, None: each rule's default). boto3 calls of this process reach it without a socket
    (tests/moto_speed.py); other processes call it over HTTP. moto's state is one per process: every
    emulator of this process and ``mock_aws`` share it, and each test that uses one resets it first."""
    layer = AwsBehaviour(window=window)
    with Emulator(port=0, wrap=layer.wrap) as emulator:
        IN_PROCESS.serve(emulator.endpoint_url, layer)
        try:
            yield AwsLikeServer(emulator.endpoint_url, layer)
        finally:
            IN_PROCESS.forget(emulator.endpoint_url)


@pytest.fixture(scope="session")
def aws_like_server() -> Iterator[AwsLikeServer]:
    """One embedded emulator in this process with the AWS-behaviour layer on (any free port)."""
    yield from embedded_aws_like()


@pytest.fixture(scope="session")
def quick_aws_like() -> Iterator[str]:
    """An embedded AWS-like emulator whose windows last 0.5 s (as :data:`AWS_LIKE_SERVER`'s), for the fault
    runs: every rule still fires and is waited out; its URL."""
    for server in embedded_aws_like(window=faults.WINDOW):
        yield server.url


@pytest.fixture
def aws_like(aws_like_server: AwsLikeServer) -> str:
    """The AWS-like emulator, emptied (moto and the layer's state reset, every rule on); its endpoint URL."""
    reset_emulator(aws_like_server.url)
    return aws_like_server.url


def aws_behaviour(url: str, **settings: Any) -> dict[str, Any]:
    """The AWS-behaviour layer's settings and refusals at ``url`` (an emulator with the layer, in this
    process or another); ``settings`` (``off=[names]``, ``on=[names]``, ``window=seconds``) change them first."""
    body = json.dumps(settings).encode() if settings else None
    request = urllib.request.Request(f"{url}{CONTROL_PATH}", data=body, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def aws_like_session() -> boto3.Session:
    """A session with the emulator's credentials in the default region."""
    return boto3.Session(region_name=REGION, **EMULATOR_CREDENTIALS)


def aws_like_context(url: str, spec: Spec | None = None, **kwargs: Any) -> Context:
    """A pointapp context over the AWS-like emulator at ``url``; progress lines are collected."""
    lines: list[str] = []
    kwargs.setdefault("emulated", True)
    ctx = Context(spec=spec or load_spec("prod"), target=Target("endpoint", REGION, url),
                  session=aws_like_session(), progress=lines.append, **kwargs)
    ctx.lines = lines  # type: ignore[attr-defined]
    return ctx


def aws_context(spec: Any = None) -> Context:
    """A context that believes it is on real AWS (confirmed), with clients we stub."""
    ctx = make_context(spec, emulated=False, assume_yes=True)
    ctx.target = Target("aws", REGION)
    return ctx


class StubberInAnyOrder(Stubber):
    """A Stubber that matches each call to the first answer stubbed for its operation: calls of different
    operations may come in any order (the reads discovery makes side by side); those of one operation
    still take its answers in the order they were added."""

    def _answer_for(self, model: Any) -> dict[str, Any]:
        for entry in self._queue:
            if entry["operation_name"] == model.name:
                return entry  # type: ignore[no-any-return]
        raise UnStubbedResponseError(operation_name=model.name, reason="no answer stubbed for this operation")

    def _assert_expected_params(self, model: Any, params: dict[str, Any], context: Any, **kwargs: Any) -> None:
        if self._should_not_stub(context):
            return
        expected = self._answer_for(model)["expected_params"]
        if expected is not None and (sorted(expected) != sorted(params) or
                                     any(expected[name] != params[name] for name in expected)):
            raise StubAssertionError(operation_name=model.name,
                                     reason=f"Expected parameters:\n{expected},\nbut received:\n{params}")

    def _get_response_handler(self, model: Any, params: dict[str, Any], context: Any, **kwargs: Any) -> Any:
        if self._should_not_stub(context):
            return None
        entry = self._answer_for(model)
        self._queue.remove(entry)
        return entry["response"]


def stub(ctx: Context, service: str, *, any_order: bool = False) -> Stubber:
    """A stubbed client for ``service`` in ``ctx``; ``any_order``: answers matched by operation
    (:class:`StubberInAnyOrder`)."""
    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    ctx._clients[service] = client
    stubber = (StubberInAnyOrder if any_order else Stubber)(client)
    stubber.activate()
    return stubber


#: Tests that take a minute or more (a whole runbook, ``make run``): run first, so that with the tests
#: spread over workers none of them is left running alone at the end.
LONG_TESTS = ("tests/test_make.py::", "tests/test_cli.py::test_runbook",
              "tests/test_runbook.py::test_a_failure", "tests/test_cli.py::test_plan_up_plan_down",
              "tests/test_cli.py::test_what_the_emulator_cannot_do", "tests/test_cli.py::test_embedded_emulator",
              "tests/test_cli.py::test_deploy_status", "tests/test_audit.py::", "tests/test_cloudformation.py::",
              "tests/test_isolation.py::test_prod_up", "tests/test_diagram.py::test_live")


#: The longest test (every notebook in a browser, one to two minutes): it starts at once on a worker of its
#: own, not behind the long tests above.
OWN_WORKER_TEST = "tests/test_browser.py::"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest tests first: the browser test, then the notebooks (nbval's cells, one worker's run of a
    minute or more, when they share the session), then :data:`LONG_TESTS`; the rest keep their order."""
    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(OWN_WORKER_TEST):
            return 0
        if item.path.suffix == ".ipynb":
            return 1
        return 2 if item.nodeid.startswith(LONG_TESTS) else 3

    items.sort(key=rank)  # stable: each notebook's cells, and the rest, keep their order
    if config.getoption("dist", "no") != "load":
        return
    # xdist's --dist load first hands each worker a block of consecutive tests, a quarter of its share
    # (xdist/scheduler/load.py): the long tests above fill the first block; the browser test leads the next.
    # (--dist loadgroup hands out one test, or one group, at a time, in this order.)
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    block = max(len(items) // workers // 4, 2) if workers > 1 else 0
    for item in [item for item in items if item.nodeid.startswith(OWN_WORKER_TEST)]:
        items.remove(item)
        items.insert(min(block, len(items)), item)


_SESSION_STARTED: list[float] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION_STARTED.append(time.monotonic())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how long the session took, and how many fault points the fault-injection tests tried
    (tests/test_faults.py)."""
    outcomes = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    ran = sum(len([r for r in terminalreporter.stats.get(name, []) if getattr(r, "when", "call") != "teardown"])
              for name in outcomes)
    if _SESSION_STARTED:
        terminalreporter.write_line(f"test session: {ran} tests in {time.monotonic() - _SESSION_STARTED[0]:.0f} s")
    passed = [r.nodeid for r in terminalreporter.stats.get("passed", []) if "test_faults.py::test_fault_" in r.nodeid]
    if passed:
        network = sum("in_the_network_step" in nodeid for nodeid in passed)
        side = sum("side_by_side" in nodeid for nodeid in passed)
        terminalreporter.write_line(
            f"fault injection: {len(passed)} fault runs passed ({network} in the network step, "
            f"{len(passed) - network - side} over the rest of up, {side} in up --parallel 4 where steps run side by "
            "side), each an error or a lost response followed by a clean up and down")
