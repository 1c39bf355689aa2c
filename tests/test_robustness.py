"""Bad input is refused in one line before any change; throttling is retried a bounded number of times."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import botocore.awsrequest
import botocore.exceptions
import pytest
from moto import mock_aws

from pointapp import cli
from pointapp.clients import Call, Clients
from pointapp.target import Context
from tests.conftest import MOTO_CONFIG, make_context


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CONFIGS = {
    "bad-cidr": "network: {vpc_cidr: 10.0.0.0/33}",
    "overlap": "network: {tiers: {db: {cidrs: [10.0.8.0/24, 10.0.17.0/24]}}}",
    "outside": "network: {tiers: {db: {cidrs: [192.168.0.0/24, 10.0.17.0/24]}}}",
    "wrong-type": "network: {zones: two}",
    "unknown-key": "servise: {port: 80}",
    "nested-unknown": "service: {prot: 80}",
    "port": "service: {port: 0}",
    "count": "service: {desired_count: -1}",
    "cpu": "service: {cpu: 300}",
    "memory": "service: {cpu: 256, memory: 4096}",
    "nat": "network: {nat: both}",
    "certificate": "service: {certificate_arn: arn:aws:acm:ap-northeast-1:1:certificate/x}",
    "group-ref": "network: {security_groups: {db: {description: d, ingress: [{port: 3306, groups: [api], description: x}]}}}",
    "retention": "service: {log_retention_days: 45}",
    "flow-log-retention": "network: {flow_logs_retention_days: 10}",
    "test-port": "service: {test_listener_port: 80}",
    "failover": "cache: {replicas: 0, automatic_failover: true}",
    "frontend": "frontend: {repository: 'https://github.com/acme/web'}",
    "repository-url": "frontend: {repository: 'git@github.com:acme/web.git', access_token_parameter: /x}",
    "reserved-tag": "tags: {'pointapp:step': x}",
    "list": "- just a list",
    "yaml": "network: {",
    "duplicate": "network:\n  nat: none\n  nat: single\n",
    "storage": "database: {allocated_storage_gb: 5}",
    "backups": "database: {backup_retention_days: 40}",
    "deployment-config": "delivery: {deployment_config: AllAtOnce}",
    "github": "delivery: {github_repository: not a repo}",
}

OPTIONS = [
    (["plan", "--env", "qa"], "--env"),
    (["plan", "--only", "netwrok"], "--only"),
    (["plan", "--region", "tokyo"], "--region"),
    (["plan", "--endpoint-url", "localhost"], "--endpoint-url"),
    (["plan", "--endpoint-url", "http://127.0.0.1:{closed}"], "cannot reach"),
    (["plan", "--aws", "--profile", "x", "--endpoint-url", "http://x"], "cannot be combined"),
    (["plan", "--config", "/no/such/file.yaml"], "--config"),
    (["deploy", "--image", "not an image"], "--image"),
    (["diagram", "--format", "gif"], "--format"),
    (["runbook", "--steps", "network,nothing"], "--only"),
    (["plan", "--nope"], "unrecognized arguments"),
    (["up", "--parallel", "0"], "--parallel"),
    (["plan", "--estimate", "--parallel", "two"], "--parallel"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], calls: list[Call]) -> tuple[int, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.err


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every AWS call any context makes in this test."""
    seen: list[Call] = []
    original = Clients._record_call

    def record(self: Clients, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        seen.append(self.calls[-1])

    monkeypatch.setattr(Clients, "_record_call", record)
    return seen


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_config(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], calls: list[Call]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIGS[name])
    code, err = _run(["up", "--yes", "--config", str(path)], capsys, calls)
    assert code == 1 and err.count("\n") == 1 and err.startswith("pointapp: error: ")
    assert [c for c in calls if c.mutating] == []


@pytest.mark.parametrize(("argv", "names"), OPTIONS, ids=[" ".join(a) for a, _ in OPTIONS])
def test_bad_option(argv: list[str], names: str, capsys: pytest.CaptureFixture[str], calls: list[Call]) -> None:
    argv = [a.format(closed=_closed_port()) for a in argv]
    try:
        code, err = _run(argv, capsys, calls)
    except SystemExit as exit_:  # argparse usage errors
        code, err = int(exit_.code or 0), capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and names in err
    assert [c for c in calls if c.mutating] == []


def test_missing_credentials(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                             calls: list[Call]) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, err = _run(["up", "--aws", "--yes"], capsys, calls)
    assert code == 1 and "no AWS credentials found" in err and calls == []


def test_the_catalogue_is_large_enough() -> None:
    assert len(CONFIGS) + len(OPTIONS) + 1 >= 30


# --- retries ------------------------------------------------------------------------------------------


def _throttle(ctx: Context, times: int) -> list[int]:
    """Answer the first ``times`` DescribeVpcs requests with a throttling error, as AWS does under load."""
    attempts = [0]

    def handler(request: Any, **_: Any) -> Any:
        if "Action=DescribeVpcs" not in str(request.body):
            return None
        attempts[0] += 1
        if attempts[0] > times:
            return None
        body = (b'<Response><Errors><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></Errors>'
                b"<RequestID>x</RequestID></Response>")
        return botocore.awsrequest.AWSResponse("https://ec2", 400, {}, _Raw(body))

    ctx.client("ec2").meta.events.register_first("before-send.ec2.DescribeVpcs", handler)
    return attempts


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_a_throttled_call_succeeds_on_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with mock_aws(config=MOTO_CONFIG):
        ctx = make_context()
        attempts = _throttle(ctx, 2)
        assert ctx.client("ec2").describe_vpcs()["Vpcs"] is not None
        assert attempts[0] == 3


def test_persistent_throttling_ends_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pointapp

    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with mock_aws(config=MOTO_CONFIG):
        ctx = make_context()
        attempts = _throttle(ctx, 100)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            pointapp.plan(ctx, only="network")
        assert attempts[0] == 5  # the bounded number of attempts, set once in Clients.botocore_config
        line = cli._one_line(caught.value)  # noqa: SLF001 - what the command prints
        assert line == "AWS refused DescribeVpcs: Rate exceeded (Throttling)"


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, change: int) -> Any:
    """Ctrl-C as the ``change``-th mutating call is made; returns the hook it replaced."""
    count = {"n": 0}
    original = Clients._record_call

    def interrupt(self: Clients, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        if self.calls[-1].mutating:
            count["n"] += 1
            if count["n"] == change:
                raise KeyboardInterrupt

    monkeypatch.setattr(Clients, "_record_call", interrupt)
    return original


def test_ctrl_c_stops_cleanly_and_the_next_run_continues(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with mock_aws(config=MOTO_CONFIG):
        original = _interrupt_at(monkeypatch, 10)
        assert cli.main(["up", "--aws", "--yes", "--only", "network"]) == 130
        err = capsys.readouterr().err
        assert err.startswith("pointapp: interrupted after ") and "running the same command again continues" in err
        assert err.count("\n") == 1
        monkeypatch.setattr(Clients, "_record_call", original)
        assert cli.main(["up", "--aws", "--yes", "--only", "network"]) == 0
        assert cli.main(["plan", "--aws", "--only", "network"]) == 0


def test_ctrl_c_during_down_stops_cleanly_and_the_next_down_finishes(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with mock_aws(config=MOTO_CONFIG):
        assert cli.main(["up", "--aws", "--yes", "--only", "network,registry"]) == 0
        capsys.readouterr()
        original = _interrupt_at(monkeypatch, 5)
        assert cli.main(["down", "--aws", "--yes", "--only", "network,registry"]) == 130
        err = capsys.readouterr().err
        assert err.startswith("pointapp: interrupted after ") and "running the same command again continues" in err
        assert err.count("\n") == 1 and "Traceback" not in err
        monkeypatch.setattr(Clients, "_record_call", original)
        assert cli.main(["down", "--aws", "--yes", "--only", "network,registry"]) == 0  # deletes the rest
        assert "Still there" not in capsys.readouterr().out
        assert cli.main(["down", "--aws", "--yes", "--only", "network,registry"]) == 0
        assert "Nothing owned by pointapp in point-app-prod: nothing to delete." in capsys.readouterr().out
