"""``pointapp audit``: a fresh environment passes every check; each weakening is one finding, one line."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import pointapp
from pointapp import cli
from pointapp.audit import (
    CHECKS,
    Result,
    check_bastion,
    check_cache,
    check_database_backup_plan,
    check_database_iam_authentication,
    check_database_logs,
    check_database_monitoring,
    check_database_tls,
    check_ec2_endpoint,
    check_https,
    check_load_balancer,
    check_non_blocking_logs,
    check_read_only_root,
    check_trust_guards,
    check_waf,
)
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
    # Documented choices of the default prod spec: plain HTTP without a domain or a certificate (serves_https), the
    # services' own keys (security.kms_key) on the artifact bucket and the log groups, and no EC2 API endpoint
    # (nothing in the VPC calls the EC2 API).
    assert statuses == {name: "choice" if name in ("https", "artifact-bucket", "keys", "ec2-endpoint") else "pass"
                        for name, _, _, _ in CHECKS}
    assert sorted((c.check, c.resource, c.choice.setting) for c in report.chosen if c.check != "https") == [
        ("artifact-bucket", "point-app-prod-artifacts-123456789012-ap-northeast-1", "security.kms_key"),
        ("ec2-endpoint", "point-app-prod-vpc", "endpoints.interface"),
        ("keys", "/pointapp/point-app-prod/api", "security.kms_key"),
        ("keys", "/pointapp/point-app-prod/vpc-flow-logs", "security.kms_key")]
    assert [c.choice.setting for c in report.chosen if c.check == "https"] == ["serves_https"]
    assert "ec2-endpoint: point-app-prod-vpc: no interface endpoint for the EC2 API (" in str(report)
    assert report.summary() == f"{len(CHECKS)} checks ({len(CHECKS)} on built resources): 0 findings, 5 documented choices"


STAGING_ALB = {"Attributes": {"routing.http.drop_invalid_header_fields.enabled": "true",
                              "routing.http.desync_mitigation_mode": "defensive", "deletion_protection.enabled": "false",
                              "access_logs.s3.enabled": "false"}}


def test_staging_reports_its_cheaper_settings_as_choices(mocked: None) -> None:
    staging = make_context(load_spec("staging"))
    observed = _observed("service", "alb", STAGING_ALB)
    balancer, waf = Result("load-balancer", ""), Result("waf", "")
    check_load_balancer(staging, observed, balancer)
    check_waf(staging, observed, waf)
    assert balancer.findings == waf.findings == []
    assert sorted(c.choice.setting for c in balancer.chosen + waf.chosen) == [
        "service.access_logs", "service.deletion_protection", "service.waf"]
    # the same load balancer in prod, whose spec turns them on, is a finding for each
    prod = Result("load-balancer", "")
    check_load_balancer(make_context(load_spec("prod")), observed, prod)
    assert [f.control for f in prod.findings] == ["ELB.6", "ELB.5"] and prod.chosen == []
    check_waf(make_context(load_spec("prod")), observed, prod)
    assert prod.findings[-1].problem == "no WAF web ACL (service.waf)" and prod.findings[-1].control == "ELB.16"


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
    client("s3").delete_bucket_lifecycle(Bucket=bucket)
    logs = next(b["Name"] for b in client("s3").list_buckets()["Buckets"] if "alb-logs" in b["Name"])
    client("s3").delete_bucket_lifecycle(Bucket=logs)
    elbv2 = client("elbv2")
    alb = elbv2.describe_load_balancers(Names=["point-app-prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=alb, Attributes=[
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "false"},
        {"Key": "routing.http.desync_mitigation_mode", "Value": "monitor"},
        {"Key": "deletion_protection.enabled", "Value": "false"}, {"Key": "access_logs.s3.enabled", "Value": "false"}])
    client("wafv2").disassociate_web_acl(ResourceArn=alb)
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-subnet-public-ingress-1a"]}])
    ec2.modify_subnet_attribute(SubnetId=subnet["Subnets"][0]["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    endpoint = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-vpce-logs"]}])
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpoints"][0]["VpcEndpointId"], PolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}))

    report = pointapp.audit(make_context())
    found = sorted((f.check, f.resource) for f in report.findings)
    assert found == [
        ("access-log-bucket", logs),
        ("artifact-bucket", bucket), ("artifact-bucket", bucket), ("artifact-bucket", bucket),
        ("bastion", "point-app-prod-bastion"),
        ("database", "point-app-prod-mysql"),
        ("default-group", f"default group {default['GroupId']}"),
        ("endpoint-policies", "point-app-prod-vpce-logs"),
        ("flow-logs", "point-app-prod-vpc"),
        *[("load-balancer", "point-app-prod-alb")] * 4,
        ("public-ingress", "point-app-prod-sg-container"), ("public-ingress", "point-app-prod-sg-db"),
        ("registry", "point-app-prod/api"),
        ("remote-login", "point-app-prod-sg-container"), ("remote-login", "point-app-prod-sg-db"),  # 3389 in 3000-3400
        ("subnet-public-ip", "point-app-prod-subnet-public-ingress-1a"),
        ("waf", "point-app-prod-alb"),
    ]
    lines = str(report).splitlines()
    assert "FINDING remote-login: point-app-prod-sg-db: SSH (22) open from 0.0.0.0/0; operators use SSM Session Manager [EC2.13]" in lines
    assert "FINDING public-ingress: point-app-prod-sg-container: ports 3000-3400/tcp open to ::/0 " \
           "(only the load balancer group may take 80 from anywhere) [EC2.18]" in lines
    assert f"FINDING artifact-bucket: {bucket}: versioning Suspended, not Enabled [S3.14]" in lines
    assert f"FINDING artifact-bucket: {bucket}: no enabled lifecycle rule: what it holds never expires [S3.13]" in lines
    assert {f.control for f in report.findings if f.check == "load-balancer"} == {"ELB.4", "ELB.5", "ELB.6", "ELB.12"}
    assert "FINDING waf: point-app-prod-alb: not associated with the web ACL point-app-prod-waf [ELB.16]" in lines
    assert ("FINDING endpoint-policies: point-app-prod-vpce-logs: its policy lets any principal of any account "
            "through (statement 1)") in lines
    assert ("FINDING subnet-public-ip: point-app-prod-subnet-public-ingress-1a: maps a public IP on launch; the load "
            "balancer and NAT gateway have their own addresses [EC2.15]") in lines


def test_a_bastion_with_a_public_ip_is_a_finding(mocked: None) -> None:
    result = Result("bastion", "", "EC2.8, EC2.9")
    raw = {"MetadataOptions": {"HttpTokens": "required"}, "PublicIpAddress": "198.51.100.7"}
    check_bastion(make_context(), _observed("bastion", "instance", raw), result)
    assert [str(f) for f in result.findings] == [
        "bastion: thing: has the public IP 198.51.100.7 (and an instance profile); it is reached through SSM only "
        "(`pointapp up` replaces it) [EC2.9]"]


@pytest.mark.parametrize(("interface", "status"), [(["ecr.api"], "choice"), (["ecr.api", "ec2"], "FAIL")])
def test_no_ec2_endpoint_is_a_choice_unless_the_spec_asks_for_one(mocked: None, interface: list[str], status: str) -> None:
    ctx = make_context(load_spec("prod", {"endpoints": {"interface": interface}}))
    observed = {**_observed("endpoints", "endpoint/ecr.api", {}), **_observed("network", "vpc", {})}
    result = Result("ec2-endpoint", "", "EC2.10")
    check_ec2_endpoint(ctx, observed, result)
    assert result.status == status


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


def test_a_check_of_a_resource_runs_only_when_it_is_built() -> None:
    """``@check(..., of=...)``: with the resource absent (its step not discovered, or discovered without it) the
    check examines nothing and finds nothing; once built, it is examined and checked."""
    for observed in ({}, {"cache": StepState()}):
        result = Result("cache", "")
        check_cache(make_context(), observed, result)
        assert result.examined == [] and result.findings == [] and result.chosen == []
    result = Result("cache", "")
    check_cache(make_context(), _observed("cache", "replication-group", {}), result)
    assert result.examined == ["thing"] and len(result.findings) == 2
    assert check_cache.__name__ == "check_cache" and [c for c in CHECKS if c[0] == "cache"][0][3] is check_cache


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
    assert out[-1] == f"{len(CHECKS)} checks (7 on built resources): 1 finding, 1 documented choice"  # network, flow log role, keys


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


# --- the data part of the baseline: trust guards, the database, the task definition ------------------------

GUARD = {"StringEquals": {"aws:SourceAccount": "123456789012"},
         "ArnLike": {"aws:SourceArn": "arn:aws:ecs:ap-northeast-1:123456789012:*"}}


def _role(name: str, service: str, condition: dict[str, Any] | None = None) -> Found:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return Found("iam-role", name, name, {"Name": name}, {"AssumeRolePolicyDocument": {"Statement": [statement]}})


def test_a_service_role_without_a_guard_is_a_finding_but_one_for_ec2_is_not() -> None:
    roles = [_role("task", "ecs-tasks.amazonaws.com", GUARD), _role("pipeline", "codepipeline.amazonaws.com"),
             _role("bastion", "ec2.amazonaws.com")]
    result = Result("trust-guards", "")
    check_trust_guards(make_context(), {"service": StepState(found={r.key: r for r in roles})}, result)
    assert result.examined == ["task", "pipeline", "bastion"]
    assert [(f.resource, f.problem.split(":")[0]) for f in result.findings] == [
        ("pipeline", "codepipeline.amazonaws.com may assume it for any account's resource")]
    assert result.note.startswith("no guard for ec2.amazonaws.com: EC2 assumes an instance profile's role")


def test_every_role_of_a_fresh_environment_is_guarded_where_its_service_allows(built: Context) -> None:
    trusts = {role["RoleName"]: role["AssumeRolePolicyDocument"]
              for role in client("iam").get_account_authorization_details(Filter=["Role"])["RoleDetailList"]
              if role["Path"].startswith("/pointapp/")}
    conditions = {name: trust["Statement"][0].get("Condition") for name, trust in trusts.items()}
    assert conditions.pop("point-app-prod-bastion") is None and conditions.pop("point-app-prod-backup") is None
    assert sorted(conditions) == ["point-app-prod-codedeploy", "point-app-prod-events", "point-app-prod-pipeline",
                                  "point-app-prod-rds-monitoring", "point-app-prod-task", "point-app-prod-task-execution",
                                  "point-app-prod-vpc-flow-logs"]
    account = built.account
    assert all(c["StringEquals"] == {"aws:SourceAccount": account} for c in conditions.values())
    assert conditions["point-app-prod-pipeline"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:codepipeline:{REGION}:{account}:point-app-prod-release"}
    assert conditions["point-app-prod-rds-monitoring"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:rds:{REGION}:{account}:db:point-app-prod-mysql"}


DATABASE = {"DBParameterGroups": [{"DBParameterGroupName": "point-app-prod-mysql-parameters",
                                   "ParameterApplyStatus": "in-sync"}],
            "IAMDatabaseAuthenticationEnabled": True, "MonitoringInterval": 60,
            "EnabledCloudwatchLogsExports": ["audit", "error", "general", "slowquery"],
            "DBInstanceArn": "arn:aws:rds:ap-northeast-1:123456789012:db:point-app-prod-mysql"}


def _database_state(raw: dict[str, Any], tls: str = "1", backup: bool = True) -> dict[str, Any]:
    found = {"instance": Found("db-instance", "instance", "point-app-prod-mysql", {"Name": "db"}, raw),
             "parameter-group": Found("db-parameter-group", "parameter-group", "point-app-prod-mysql-parameters",
                                      {"Name": "params"}, {"Values": {"require_secure_transport": tls}})}
    if backup:
        found["backup/plan"] = Found("backup-plan", "backup/plan", "plan-1", {"Name": "plan"}, {})
        found["backup/selection"] = Found("backup-selection", "backup/selection", "s-1", {}, {"BackupSelection": {
            "Resources": [DATABASE["DBInstanceArn"]]}})
    return {"database": StepState(found=found)}


DATA_CHECKS = [check_database_tls, check_database_iam_authentication, check_database_logs, check_database_monitoring,
               check_database_backup_plan]


@pytest.mark.parametrize(("raw", "tls", "backup", "problems"), [
    ({}, "1", True, []),
    ({"DBParameterGroups": [{"DBParameterGroupName": "default.mysql8.4"}]}, "1", True,
     ["uses the parameter group default.mysql8.4, not its own with require_secure_transport = 1"]),
    ({}, "0", True, ["its parameter group params lets clients connect without TLS (require_secure_transport is not 1)"]),
    ({"DBParameterGroups": [{"DBParameterGroupName": "point-app-prod-mysql-parameters",
                             "ParameterApplyStatus": "pending-reboot"}]}, "1", True,
     ["its parameter group applies at the next reboot (pending-reboot): TLS is not required yet"]),
    ({"IAMDatabaseAuthenticationEnabled": False}, "1", True, ["IAM database authentication is off"]),
    ({"EnabledCloudwatchLogsExports": ["error"]}, "1", True,
     ["does not export the audit, general, slowquery logs to CloudWatch Logs"]),
    ({"MonitoringInterval": 0}, "1", True, ["enhanced monitoring is off"]),
    ({}, "1", False, ["is in no AWS Backup plan"]),
])
def test_each_weakening_of_the_database_is_a_finding(raw: dict[str, Any], tls: str, backup: bool,
                                                      problems: list[str]) -> None:
    ctx = make_context(emulated=False)  # AWS: option groups, backup selections
    found = []
    for check in DATA_CHECKS:
        result = Result(check.__name__, "")
        check(ctx, _database_state({**DATABASE, **raw}, tls, backup), result)
        found += [f.problem for f in result.findings]
    assert found == problems


def test_staging_database_choices_are_reported_as_choices() -> None:
    ctx = make_context(load_spec("staging"), emulated=False)
    raw = {**DATABASE, "MonitoringInterval": 0, "EnabledCloudwatchLogsExports": ["error", "slowquery"]}
    chosen = []
    for check in DATA_CHECKS:
        result = Result(check.__name__, "")
        check(ctx, _database_state(raw, backup=False), result)
        assert result.findings == []
        chosen += [(c.choice.control, c.choice.setting) for c in result.chosen]
    assert chosen == [("RDS.9", "database.activity_logs"), ("RDS.6", "database.monitoring_interval"),
                      ("RDS.26", "database.backup_plan")]


def test_the_emulator_gaps_are_notes_not_findings() -> None:
    ctx = make_context()  # the emulator: no MySQL 8.4 option groups, no backup selections
    state = _database_state({**DATABASE, "EnabledCloudwatchLogsExports": ["error", "general", "slowquery"]})
    state["database"].unavailable["backup-selection"] = "the emulator has no backup selections"
    for check, note in [(check_database_logs, "audit log not checked"), (check_database_backup_plan, "its selection not checked")]:
        result = Result(check.__name__, "")
        check(ctx, state, result)
        assert result.findings == [] and note in result.note


@pytest.mark.parametrize(("container", "problems"), [
    ({"readonlyRootFilesystem": True, "logConfiguration": {"options": {"mode": "non-blocking"}}}, []),
    ({"logConfiguration": {"options": {}}},
     ["the container's root file system is writable",
      "logs in the default (blocking) mode: a CloudWatch Logs outage stops the API's writes to stdout"]),
])
def test_the_task_definition_checks(container: dict[str, Any], problems: list[str]) -> None:
    state = _observed("service", "taskdef", {"containerDefinitions": [{"name": "api", **container}]})
    found = []
    for check in (check_read_only_root, check_non_blocking_logs):
        result = Result(check.__name__, "")
        check(make_context(), state, result)
        found += [f.problem for f in result.findings]
    assert found == problems
