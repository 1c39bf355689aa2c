from __future__ import annotations

from typing import Any

import pytest

from pointapp.emulator import EMULATOR_CREDENTIALS, Emulator
from pointapp.errors import TargetError
from pointapp.sessions import new_session
from pointapp.target import DEFAULT_REGION, Target, check_reachable, connect, resolve_target


def test_default_is_the_shared_emulator_in_tokyo() -> None:
    target = resolve_target(environ={})
    assert (target.kind, target.region, target.endpoint_url) == ("shared", DEFAULT_REGION, None)


def test_the_embedded_emulator_when_asked_for() -> None:
    assert resolve_target(ephemeral=True, environ={}).kind == "emulator"
    assert resolve_target(environ={"POINTAPP_EMULATOR": "ephemeral"}).kind == "emulator"
    assert resolve_target(environ={"POINTAPP_EMULATOR": "shared"}).kind == "shared"
    # asked for on the command line, it wins over a configured endpoint; the environment's choice does not
    assert resolve_target(ephemeral=True, environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}).kind == "emulator"
    assert resolve_target(environ={"POINTAPP_EMULATOR": "ephemeral", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
                          ).kind == "endpoint"


def test_region_order() -> None:
    assert resolve_target(environ={"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert resolve_target(environ={"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "us-east-1"
    assert resolve_target(region="us-west-2", environ={"AWS_REGION": "us-east-1"}).region == "us-west-2"


def test_endpoint_option_wins_over_the_environment() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    assert resolve_target(environ=env).endpoint_url == "http://127.0.0.1:4566"
    assert resolve_target(endpoint_url="http://127.0.0.1:5000/", environ=env).endpoint_url == "http://127.0.0.1:5000"


def test_real_aws_only_when_asked_and_ignores_a_configured_endpoint() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    assert resolve_target(aws=True, environ=env).kind == "aws"
    profiled = resolve_target(profile="ops", environ=env)
    assert profiled.kind == "aws" and profiled.profile == "ops" and profiled.endpoint_url is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"region": "ap-northeast-9"}, "--region: unknown region 'ap-northeast-9'"),
    ({"endpoint_url": "ftp://x"}, "is not a URL"),
    ({"endpoint_url": "http://127.0.0.1:1", "aws": True}, "cannot be combined"),
    ({"endpoint_url": "http://127.0.0.1:1", "ephemeral": True}, "--ephemeral cannot be combined with --endpoint-url"),
    ({"profile": "ops", "ephemeral": True}, "--ephemeral cannot be combined"),
    ({"environ": {"POINTAPP_EMULATOR": "shraed"}}, "POINTAPP_EMULATOR: unknown mode 'shraed'; allowed: shared, ephemeral"),
    ({"environ": {"POINTAPP_EMULATOR_PORT": "50000000"}}, "POINTAPP_EMULATOR_PORT: '50000000' is not a port number"),
])
def test_bad_targets(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve_target(**{"environ": {}, **kwargs})  # type: ignore[arg-type]


def test_connect_to_a_loopback_endpoint_needs_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with Emulator() as emulator, connect(endpoint_url=emulator.endpoint_url) as ctx:
        assert ctx.target.kind == "endpoint"
        assert ctx.client("ec2").describe_vpcs()["Vpcs"] is not None


def test_embedded_emulator_starts_and_stops() -> None:
    ctx = connect(env="staging")
    assert ctx.target.kind == "emulator" and ctx.emulator is not None
    url = ctx.target.endpoint_url
    ctx.client("ec2").describe_vpcs()
    ctx.close()
    assert ctx.emulator is None
    with pytest.raises(TargetError, match=f"cannot reach {url}: is the endpoint running"):
        connect(endpoint_url=url)
    # A shared emulator that stopped after it was found is named as such, with what to do.
    with pytest.raises(TargetError, match="has the shared emulator stopped. `pointapp emulator --status`"):
        check_reachable(new_session(region_name=DEFAULT_REGION, **EMULATOR_CREDENTIALS), Target("shared", DEFAULT_REGION, url, pid=1))


def test_one_botocore_config_for_every_client() -> None:
    with connect() as ctx:
        ec2, sts = ctx.client("ec2"), ctx.client("sts")
        assert ctx.client("ec2") is ec2
        for client in (ec2, sts):
            assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 5}


def test_an_endpoint_that_is_moto_is_known_as_the_emulator(moto_server: str) -> None:
    from pointapp.target import Context

    with connect(endpoint_url=moto_server) as ctx:
        assert isinstance(ctx, Context) and ctx.lacks("amplify", "Amplify") is not None
        assert ctx.lacks("ec2", "CreateVpc") is None


def test_real_aws_lacks_nothing() -> None:
    from moto import mock_aws

    with mock_aws(), connect(aws=True) as ctx:
        assert ctx.lacks("amplify", "Amplify") is None


def test_the_account_is_asked_once_and_is_no_step_output() -> None:
    from moto import mock_aws

    from pointapp.errors import SpecError

    with mock_aws(), connect(aws=True) as ctx:
        before = len(ctx.calls)
        assert ctx.account == ctx.account == "123456789012"
        assert ctx.calls[before:] == []  # the reachability check of connect asked STS already
        with pytest.raises(SpecError, match="unknown step 'account'"):
            ctx.outputs("account")


def test_a_step_asked_for_the_outputs_of_one_not_discovered_yet_has_them_discovered_once() -> None:
    from moto import mock_aws

    import pointapp

    with mock_aws(), connect(aws=True, yes=True) as ctx:
        pointapp.up(ctx, only="registry")
        ctx.forget_outputs("registry")
        before = len(ctx.calls)
        outputs = ctx.outputs("registry")
        assert outputs and ctx.outputs("registry") is outputs
        assert ctx.calls[before:] and not [c for c in ctx.calls[before:] if c.mutating]
        reads = len(ctx.calls)
        assert ctx.outputs("registry") == outputs and len(ctx.calls) == reads  # known now: no read


def test_an_endpoint_is_asked_whether_it_is_the_emulator_once_and_only_where_it_matters(
        moto_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """connect does not probe the endpoint: the first question about an operation the emulator lacks does, once."""
    from pointapp import emulator

    asked: list[str | None] = []
    probe = emulator.answers_as_moto
    monkeypatch.setattr(emulator, "answers_as_moto", lambda url: asked.append(url) or probe(url))
    with connect(endpoint_url=moto_server) as ctx:
        assert asked == []
        assert ctx.lacks("ec2", "CreateVpc") is None and asked == []  # no operation the emulator lacks: no probe
        assert ctx.lacks("amplify", "Amplify") is not None
        assert ctx.lacks("codedeploy", "DeleteApplication") is not None
        assert asked == [moto_server]


def test_an_endpoint_that_does_not_answer_the_probe_in_time_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy emulator that misses the probe's timeout, or fails it with a server error, is not taken for AWS
    (whose services it lacks would then be called); an endpoint that refuses is no moto; one that never
    answers, after a few tries."""
    import io
    import urllib.error

    from pointapp import emulator

    class Answer(io.BytesIO):
        status = 200

    answers: list[Any] = [TimeoutError("timed out"), Answer(b"{}")]
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> Any:
        asked.append(url)
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(emulator.urllib.request, "urlopen", urlopen)
    assert emulator.answers_as_moto("http://127.0.0.1:1") is True
    assert asked == ["http://127.0.0.1:1/moto-api/config"] * 2
    answers[:] = [urllib.error.HTTPError("http://x/moto-api/config", 404, "Not Found", None, None)]  # type: ignore[arg-type]
    assert emulator.answers_as_moto("http://x") is False and not answers
    answers[:] = [urllib.error.HTTPError("http://x/moto-api/config", 500, "Internal", None, None), Answer(b"{}")]  # type: ignore[arg-type]
    assert emulator.answers_as_moto("http://x") is True and not answers
    answers[:] = [ConnectionResetError("reset")] * 3
    assert emulator.answers_as_moto("http://x") is False and not answers


def test_the_sessions_of_a_process_share_what_botocore_parsed() -> None:
    """The region check's session and the run's session read botocore's data through one loader."""
    from pointapp.sessions import data_session

    with connect() as ctx:
        loader = ctx.session._session.get_component("data_loader")  # noqa: SLF001 - botocore's session
        assert loader is data_session()._session.get_component("data_loader")  # noqa: SLF001
        first = ctx.client("ec2").meta.service_model
    with connect() as again:  # another run's client of the same service: the same model, built once
        assert again.client("ec2").meta.service_model is first
        assert again.client("ec2").meta.service_model.operation_model("DescribeVpcs") is first.operation_model("DescribeVpcs")
    import boto3

    own = boto3.Session(region_name=DEFAULT_REGION, aws_access_key_id="x", aws_secret_access_key="x")  # its own loader
    model = own.client("ec2", endpoint_url="http://127.0.0.1:9").meta.service_model
    assert model is not first and model.operation_names == first.operation_names


def test_clients_of_a_shared_model_share_its_methods_and_each_is_still_shaped_by_its_session() -> None:
    from pointapp.sessions import new_session

    shaped: list[str] = []

    def client(tag: str) -> Any:
        session = new_session(region_name=DEFAULT_REGION, **EMULATOR_CREDENTIALS)
        session.events.register("creating-client-class.ec2",
                                lambda class_attributes, **_: class_attributes.update(tag=tag) or shaped.append(tag))
        return session.client("ec2", endpoint_url="http://127.0.0.1:9")

    first, second = client("first"), client("second")
    assert shaped == ["first", "second"] and (first.tag, second.tag) == ("first", "second")
    assert type(first) is not type(second)
    assert type(first).describe_vpcs is type(second).describe_vpcs  # one function per operation, made once
    assert first.describe_vpcs.__name__ == "describe_vpcs" and "DescribeVpcs" in first._PY_TO_OP_NAME.values()  # noqa: SLF001


def test_a_client_copies_its_sessions_event_handlers_apart_from_them() -> None:
    from pointapp.sessions import new_session

    session = new_session(region_name=DEFAULT_REGION, **EMULATOR_CREDENTIALS)
    heard: list[str] = []
    session.events.register("probe.ec2.DescribeVpcs", lambda **_: heard.append("session"))
    ec2 = session.client("ec2", endpoint_url="http://127.0.0.1:9")
    ec2.meta.events.register("probe.ec2.DescribeVpcs", lambda **_: heard.append("client"))
    session.events.register_first("probe.ec2.DescribeVpcs", lambda **_: heard.append("session, later"))
    ec2.meta.events.emit("probe.ec2.DescribeVpcs")
    assert heard == ["session", "client"]  # what either registers later stays its own
    heard.clear()
    session.events.emit("probe.ec2.DescribeVpcs")
    assert heard == ["session, later", "session"]


def test_requests_arriving_side_by_side_parse_a_service_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from moto.core import responses, routing, utils

    from pointapp.emulator import load_each_model_once

    load_each_model_once()
    load_each_model_once()  # a second call changes nothing
    parsed: list[str] = []
    parse = utils._load_service_model

    def counted(service_name: str, model_name: str) -> Any:
        parsed.append(f"{service_name}/{model_name}")
        return parse(service_name, model_name)

    monkeypatch.setattr(utils, "_load_service_model", counted)
    assert responses.get_service_model is utils.get_service_model is routing.get_service_model
    service = "glacier"  # a service no test asks moto about: its model is not parsed yet in this process
    readers = [threading.Thread(target=responses.get_service_model, args=(service,)) for _ in range(6)]
    readers += [threading.Thread(target=responses.get_pagination_model, args=(service,)) for _ in range(6)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert sorted(parsed) == [f"{service}/paginators-1", f"{service}/service-2"]
    assert responses.get_service_model(service).service_name == service


#: The services of pointapp's runbook, and one name moto serves that botocore does not know.
RUNBOOK_SERVICES = ("ec2", "ecs", "ecr", "elbv2", "codedeploy", "codepipeline", "codebuild", "rds", "elasticache",
                    "iam", "sts", "ses", "sesv2", "amplify", "logs", "s3", "secretsmanager", "kms", "ssm",
                    "cloudwatch", "events", "acm", "route53", "instance_metadata")


def test_the_emulators_backends_are_made_for_the_regions_botocore_lists() -> None:
    import boto3

    from pointapp.emulator import _regions_of

    session = boto3.Session()
    for service in RUNBOOK_SERVICES:
        expected = [region for partition in session.get_available_partitions()
                    for region in session.get_available_regions(service, partition_name=partition)]
        assert _regions_of(None, service) == expected, service
    assert _regions_of(None, "instance_metadata") == []
    assert "ap-northeast-1" in _regions_of(None, "ec2") and "cn-north-1" in _regions_of(None, "ec2")


def test_finding_the_account_of_an_access_key_makes_no_iam_backend() -> None:
    from moto.iam import models as iam

    from pointapp.emulator import start_with_less_work

    start_with_less_work()
    start_with_less_work()  # a second call changes nothing
    account = "000000000042"  # an account no other test uses
    key = iam.iam_backends[account]["aws"].create_temp_access_key()
    assert iam.get_account_id_from(key.access_key_id) == account
    assert iam.get_account_id_from("no-such-key") == "123456789012"  # moto's default account
    assert list(dict.keys(iam.iam_backends[account])) == ["aws"]  # the other five partitions are still unmade
    # Over HTTP, a key made by CreateAccessKey still names its account.
    with Emulator() as emulator:
        root = new_session(region_name=DEFAULT_REGION, **EMULATOR_CREDENTIALS)
        made = root.client("iam", endpoint_url=emulator.endpoint_url)
        made.create_user(UserName="deployer")
        created = made.create_access_key(UserName="deployer")["AccessKey"]
        user = new_session(region_name=DEFAULT_REGION, aws_access_key_id=created["AccessKeyId"],
                           aws_secret_access_key=created["SecretAccessKey"])
        identity = user.client("sts", endpoint_url=emulator.endpoint_url).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:iam::{identity['Account']}:user/deployer"
