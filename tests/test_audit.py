"""``pointapp audit``: a fresh environment passes every check; each weakening is one finding, one line."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

import pointapp
from pointapp import cli
from pointapp.audit import CHECKS, Result, check_cache, check_https
from pointapp.errors import PointappError
from pointapp.resources import Found, StepState
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context

CERTIFICATE = "arn:aws:acm:ap-northeast-1:123456789012:certificate/abc"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def group_id(name: str) -> str:
    groups = client("ec2").describe_security_groups(Filters=[{"Name": "tag:Name", "Values": [name]}])["SecurityGroups"]
    return str(groups[0]["GroupId"])


@pytest.fixture
def built(ctx: Context) -> Context:
    pointapp.up(ctx)
    return ctx


def test_a_fresh_environment_passes_every_check(built: Context) -> None:
    report = pointapp.audit(built)
    assert report.findings == []
    statuses = {r.check: r.status for r in report.results}
    # Without a domain or a certificate, plain HTTP on the load balancer is the documented choice serves_https.
    assert statuses == {name: "choice" if name == "https" else "pass" for name, _, _, _ in CHECKS}
    assert [c.choice.setting for c in report.chosen] == ["serves_https"]
    assert report.summary() == "10 checks (10 on built resources): 0 findings, 1 documented choice"


def test_each_weakening_is_a_finding(built: Context) -> None:
    ec2 = client("ec2")
    db = group_id("point-app-prod-sg-db")
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    container = group_id("point-app-prod-sg-container")
    ec2.authorize_security_group_ingress(GroupId=container, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3000, "ToPort": 3400, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-vpc"]}])["Vpcs"][0]["VpcId"]
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                    {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    ec2.authorize_security_group_ingress(GroupId=default["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    ec2.delete_flow_logs(FlowLogIds=[f["FlowLogId"] for f in flow_logs])
    bastion = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-bastion"]},
                                              {"Name": "instance-state-name", "Values": ["running"]}])
    ec2.modify_instance_metadata_options(InstanceId=bastion["Reservations"][0]["Instances"][0]["InstanceId"],
                                         HttpTokens="optional")
    client("ecr").put_image_scanning_configuration(repositoryName="point-app-prod/api",
                                                   imageScanningConfiguration={"scanOnPush": False})
    bucket = next(b["Name"] for b in client("s3").list_buckets()["Buckets"] if "artifacts" in b["Name"])
    client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    client("s3").delete_public_access_block(Bucket=bucket)
    client("rds").modify_db_instance(DBInstanceIdentifier="point-app-prod-mysql", PubliclyAccessible=True,
                                     ApplyImmediately=True)

    report = pointapp.audit(make_context())
    found = sorted((f.check, f.resource) for f in report.findings)
    assert found == [
        ("artifact-bucket", bucket), ("artifact-bucket", bucket),
        ("bastion", "point-app-prod-bastion"),
        ("database", "point-app-prod-mysql"),
        ("default-group", f"default group {default['GroupId']}"),
        ("flow-logs", "point-app-prod-vpc"),
        ("public-ingress", "point-app-prod-sg-container"), ("public-ingress", "point-app-prod-sg-db"),
        ("registry", "point-app-prod/api"),
        ("remote-login", "point-app-prod-sg-container"), ("remote-login", "point-app-prod-sg-db"),  # 3389 in 3000-3400
    ]
    lines = str(report).splitlines()
    assert "FINDING remote-login: point-app-prod-sg-db: SSH (22) open from 0.0.0.0/0; operators use SSM Session Manager [EC2.13]" in lines
    assert "FINDING public-ingress: point-app-prod-sg-container: ports 3000-3400/tcp open to ::/0 " \
           "(only the load balancer group may take 80 from anywhere) [EC2.18]" in lines
    assert f"FINDING artifact-bucket: {bucket}: versioning Suspended, not Enabled [S3.14]" in lines


def _observed(step: str, key: str, raw: dict[str, Any]) -> dict[str, Any]:
    return {step: StepState(found={key: Found("x", key, "id-1", {"Name": "thing"}, raw)})}


@pytest.mark.parametrize(("raw", "problems"), [
    ({"TransitEncryptionEnabled": True, "AtRestEncryptionEnabled": True}, []),
    ({"TransitEncryptionEnabled": False, "AtRestEncryptionEnabled": True}, ["not encrypted in transit (TLS off)"]),
    ({"AtRestEncryptionEnabled": False}, ["not encrypted in transit (TLS off)", "not encrypted at rest"]),
])
def test_cache_encryption(raw: dict[str, Any], problems: list[str]) -> None:
    result = Result("cache", "")
    check_cache(make_context(), _observed("cache", "replication-group", raw), result)
    assert [f.problem for f in result.findings] == problems and result.examined == ["thing"]


CURRENT = {"SslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"}
REDIRECT = {"DefaultActions": [{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443"}}]}


@pytest.mark.parametrize(("certificate", "raw", "redirect", "problems"), [
    (CERTIFICATE, {"Protocol": "HTTP", "Port": 80}, REDIRECT, ["the production listener is HTTP 80, not HTTPS 443"]),
    (CERTIFICATE, {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": CERTIFICATE + "x"}], **CURRENT},
     REDIRECT, ["the production listener does not use the configured certificate"]),
    (CERTIFICATE, {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": CERTIFICATE}], **CURRENT},
     REDIRECT, []),
    (CERTIFICATE, {"Protocol": "HTTPS", "Port": 443, "Certificates": [{"CertificateArn": CERTIFICATE}],
                   "SslPolicy": "ELBSecurityPolicy-2016-08"}, {"DefaultActions": [{"Type": "forward"}]},
     ["TLS policy ELBSecurityPolicy-2016-08 is not a current one", "HTTP 80 does not redirect to HTTPS"]),
])
def test_https_when_a_certificate_is_configured(mocked: None, certificate: str | None, raw: dict[str, Any],
                                                redirect: dict[str, Any], problems: list[str]) -> None:
    ctx = make_context(load_spec("prod", {"service": {"certificate_arn": certificate}}))
    result = Result("https", "", "ELB.1, ELB.17")
    observed = _observed("service", "listener/production", raw)
    observed["service"].found["listener/redirect"] = Found("listener", "listener/redirect", "id-2", {"Name": "http"}, redirect)
    check_https(ctx, observed, result)
    assert [f.problem.split(" (")[0] for f in result.findings] == problems
    if len(problems) == 2:
        assert [f.control for f in result.findings] == ["ELB.17", "ELB.1"]


def test_plain_http_without_a_domain_is_the_documented_choice(mocked: None) -> None:
    result = Result("https", "", "ELB.1, ELB.17")
    check_https(make_context(), _observed("service", "listener/production", {"Protocol": "HTTP", "Port": 80}), result)
    assert result.status == "choice" and result.findings == []
    assert result.chosen[0].choice.control == "ELB.1"


def test_nothing_built_is_an_error(ctx: Context) -> None:
    with pytest.raises(PointappError, match="nothing to audit: point-app-prod has no network"):
        pointapp.audit(ctx)


def test_the_cli_exits_3_with_one_line_per_finding(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ["--endpoint-url", server]
    assert cli.main(["audit", *target]) == 1
    assert capsys.readouterr().err.strip().startswith("pointapp: error: nothing to audit")
    assert cli.main(["up", "--only", "network", *target]) == 0
    capsys.readouterr()
    assert cli.main(["audit", *target]) == 0
    assert "0 findings" in capsys.readouterr().out
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=server)
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-sg-management"]}])
    ec2.authorize_security_group_ingress(GroupId=groups["SecurityGroups"][0]["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])
    assert cli.main(["audit", *target]) == 3
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if line.startswith("FINDING")] == [
        "FINDING remote-login: point-app-prod-sg-management: RDP (3389) open from 203.0.113.0/24; "
        "operators use SSM Session Manager [EC2.14]"]
    assert out[-1] == "10 checks (4 on built resources): 1 finding"  # the network checks


def test_a_documented_choice_is_reported_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from pointapp import baseline
    from pointapp.audit import Report

    chosen = baseline.Choice("WAF.2", "service.port", "no web ACL", "about 10 USD a month", "staging takes no traffic")
    monkeypatch.setitem(baseline.CHOICES, "service.port", chosen)
    result = Result("waf", "a web ACL on the load balancer", "WAF.2")
    result.examined.append("point-app-staging-alb")
    result.choose("point-app-staging-alb", "service.port")
    report = Report("audit", [result])
    assert result.status == "choice" and report.findings == []
    assert report.summary() == "1 checks (1 on built resources): 0 findings, 1 documented choice"
    assert "CHOICE waf: point-app-staging-alb: no web ACL (service.port; staging takes no traffic; " \
           "meeting it: about 10 USD a month) [WAF.2]" in str(report)
    assert chosen.off(load_spec("staging").model_copy(update={"service": load_spec("staging").service.model_copy(
        update={"port": 0})}))
    with pytest.raises(KeyError):
        result.choose("x", "service.nothing-documented")
    result.flag("point-app-staging-alb", "no web ACL")
    assert result.status == "FAIL" and str(report.findings[0]).endswith("[WAF.2]")
