"""The network step on in-process moto: topology, idempotency, convergence, ownership, destroy."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import pointapp
from pointapp import engine, schedule
from pointapp.errors import SpecError, StepError
from pointapp.spec import load_spec
from pointapp.steps import network
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.test_spec import EXPECTED_SUBNETS

OWNER_FILTERS = [{"Name": "tag:pointapp:environment", "Values": ["point-app-prod"]}]


def ec2() -> Any:
    return boto3.client("ec2", region_name=REGION)


def owned(kind: str, key: str) -> list[dict[str, Any]]:
    return ec2().__getattribute__(f"describe_{kind}")(Filters=OWNER_FILTERS)[key]


def name_of(item: dict[str, Any]) -> str:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}.get("Name", "")


def topology() -> dict[str, Any]:
    """What exists for the prod environment, by Name, in a form two runs can be compared by."""
    client = ec2()
    subnets = {s["SubnetId"]: name_of(s) for s in owned("subnets", "Subnets")}
    groups = {g["GroupId"]: name_of(g) for g in owned("security_groups", "SecurityGroups")}
    nats = {n["NatGatewayId"]: name_of(n) for n in client.describe_nat_gateways(Filter=OWNER_FILTERS)["NatGateways"]
            if n["State"] not in ("deleted", "deleting")}
    igws = {i["InternetGatewayId"]: name_of(i) for i in owned("internet_gateways", "InternetGateways")}
    named = {**subnets, **groups, **nats, **igws}
    return {
        "vpcs": sorted((name_of(v), v["CidrBlock"]) for v in owned("vpcs", "Vpcs")),
        "subnets": sorted((name_of(s), s["CidrBlock"], s["AvailabilityZone"], s["MapPublicIpOnLaunch"])
                          for s in owned("subnets", "Subnets")),
        "igws": sorted(igws.values()),
        "nats": sorted((name_of(n), subnets[n["SubnetId"]]) for n in
                       client.describe_nat_gateways(Filter=OWNER_FILTERS)["NatGateways"]
                       if n["State"] not in ("deleted", "deleting")),
        "addresses": sorted(name_of(a) for a in client.describe_addresses(Filters=OWNER_FILTERS)["Addresses"]),
        "route_tables": sorted(
            (name_of(t),
             tuple(sorted((r.get("DestinationCidrBlock"), named.get(r.get("NatGatewayId") or r.get("GatewayId"), r.get("GatewayId")))
                          for r in t["Routes"])),
             tuple(sorted(subnets[a["SubnetId"]] for a in t["Associations"] if a.get("SubnetId"))))
            for t in owned("route_tables", "RouteTables")),
        "rules": sorted(
            (name_of(g), p["IpProtocol"], p.get("FromPort"), src, desc)
            for g in owned("security_groups", "SecurityGroups") for p in g["IpPermissions"]
            for src, desc in [(r["CidrIp"], r.get("Description")) for r in p.get("IpRanges", [])]
            + [(r["CidrIpv6"], r.get("Description")) for r in p.get("Ipv6Ranges", [])]
            + [(groups.get(r["GroupId"], r["GroupId"]), r.get("Description")) for r in p.get("UserIdGroupPairs", [])]),
    }


def up(ctx: Context) -> pointapp.Outcome:
    return pointapp.up(ctx, only="network")


def test_up_builds_the_reference_topology(ctx: Context) -> None:
    up(ctx)
    found = topology()
    assert found["vpcs"] == [("point-app-prod-vpc", "10.0.0.0/16")]
    subnets = {name: (cidr, zone, public) for name, cidr, zone, public in found["subnets"]}
    expected = {}
    for tier, (public, _, cidr_a, cidr_c) in EXPECTED_SUBNETS.items():
        kind = "public" if public else "private"
        # no subnet maps a public IP on launch (FSBP EC2.15), public ones neither
        expected[f"point-app-prod-subnet-{kind}-{tier}-1a"] = (cidr_a, "ap-northeast-1a", False)
        expected[f"point-app-prod-subnet-{kind}-{tier}-1c"] = (cidr_c, "ap-northeast-1c", False)
    assert subnets == expected
    assert found["igws"] == ["point-app-prod-igw"]
    assert found["nats"] == [("point-app-prod-nat-1a", "point-app-prod-subnet-public-ingress-1a")]
    assert found["addresses"] == ["point-app-prod-eip-nat-1a"]
    tables = {name: (routes, subnets) for name, routes, subnets in found["route_tables"]}
    local = ("10.0.0.0/16", "local")
    assert tables["point-app-prod-rtb-ingress"] == (
        (("0.0.0.0/0", "point-app-prod-igw"), local),
        ("point-app-prod-subnet-public-ingress-1a", "point-app-prod-subnet-public-ingress-1c"))
    assert tables["point-app-prod-rtb-app"] == (
        (("0.0.0.0/0", "point-app-prod-nat-1a"), local),
        ("point-app-prod-subnet-private-container-1a", "point-app-prod-subnet-private-container-1c"))
    # the bastion's subnets: private, out through the NAT gateway (to SSM), without the S3 gateway endpoint
    assert tables["point-app-prod-rtb-management"] == (
        (("0.0.0.0/0", "point-app-prod-nat-1a"), local),
        ("point-app-prod-subnet-private-management-1a", "point-app-prod-subnet-private-management-1c"))
    for isolated in ("db", "cache", "egress"):
        assert tables[f"point-app-prod-rtb-{isolated}"] == (
            (local,), (f"point-app-prod-subnet-private-{isolated}-1a", f"point-app-prod-subnet-private-{isolated}-1c"))
    assert len(tables) == 6


def test_up_sets_exactly_the_reference_rules(ctx: Context) -> None:
    up(ctx)
    sg = "point-app-prod-sg-"
    assert topology()["rules"] == sorted([
        (sg + "ingress", "tcp", 80, "0.0.0.0/0", "HTTP from the internet to the load balancer"),
        (sg + "ingress", "tcp", 80, "::/0", "HTTP from the internet to the load balancer"),
        (sg + "ingress", "tcp", 10080, sg + "management", "Test listener of blue/green releases, from the bastion only"),
        (sg + "container", "tcp", 80, sg + "ingress", "App port from the load balancer to the API tasks"),
        (sg + "db", "tcp", 3306, sg + "container", "MySQL from the API tasks"),
        (sg + "db", "tcp", 3306, sg + "management", "MySQL from the bastion"),
        (sg + "cache", "tcp", 6379, sg + "container", "Redis from the API tasks"),
        (sg + "cache", "tcp", 6379, sg + "management", "Redis from the bastion"),
        (sg + "egress", "tcp", 443, sg + "container", "HTTPS to the VPC endpoints from the API tasks"),
        (sg + "egress", "tcp", 443, sg + "management", "HTTPS to the VPC endpoints from the bastion"),
    ])
    groups = owned("security_groups", "SecurityGroups")
    assert sorted(name_of(g) for g in groups) == sorted(
        sg + g for g in ("ingress", "container", "db", "cache", "egress", "management"))
    assert all(g["IpPermissionsEgress"] and g["IpPermissionsEgress"][0]["IpProtocol"] == "-1" for g in groups)


def test_vpc_dns_on_and_default_group_empty(ctx: Context) -> None:
    up(ctx)
    client = ec2()
    vpc_id = owned("vpcs", "Vpcs")[0]["VpcId"]
    assert client.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert client.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    default = client.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                       {"Name": "group-name", "Values": ["default"]}])
    group = default["SecurityGroups"][0]
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []


def test_every_resource_is_tagged_in_its_create_call(ctx: Context) -> None:
    creates: list[tuple[str, dict[str, Any]]] = []
    ctx.session.events.register("provide-client-params.ec2.*",
                                lambda params, model, **_: creates.append((model.name, dict(params))))
    up(ctx)
    made = [(name, params) for name, params in creates
            if name.startswith(("Create", "Allocate")) and name not in ("CreateRoute", "CreateTags")]
    assert {name for name, _ in made} == {"CreateVpc", "CreateInternetGateway", "CreateSubnet", "AllocateAddress",
                                          "CreateNatGateway", "CreateRouteTable", "CreateSecurityGroup", "CreateFlowLogs"}
    for name, params in made:
        tags = {t["Key"]: t["Value"] for t in params["TagSpecifications"][0]["Tags"]}
        assert tags["pointapp:environment"] == "point-app-prod" and tags["pointapp:step"] == "network", name
        assert tags["Name"].startswith("point-app-prod-") and tags["Project"] == "point-app"
    assert not [n for n, _ in creates if n == "CreateTags"]


def test_second_up_makes_no_mutating_call_and_plan_is_empty(ctx: Context) -> None:
    first = up(ctx)
    assert first.summary().startswith("Created 56, changed 1")
    before = len(ctx.calls)
    second = up(ctx)
    calls = ctx.calls[before:]
    assert [c for c in calls if c.mutating] == []
    # discovery is a handful of filtered calls, not one per resource: 12 for the EC2 layout, 4 for the flow logs
    assert len(calls) <= 16, calls
    assert second.applied == [] and second.unchanged == 31
    assert pointapp.plan(ctx, only="network").empty


def test_down_leaves_nothing_owned(ctx: Context) -> None:
    up(ctx)
    outcome = pointapp.down(ctx, only="network")
    assert outcome.warnings == []
    assert topology() == {"vpcs": [], "subnets": [], "igws": [], "nats": [], "addresses": [], "route_tables": [],
                          "rules": []}
    assert pointapp.plan_destroy(ctx, only="network").empty
    assert any("waiting for NAT gateway" in line and "deleted" in line for line in ctx.lines)  # type: ignore[attr-defined]


def test_nat_wait_shows_progress(ctx: Context) -> None:
    up(ctx)
    lines = ctx.lines  # type: ignore[attr-defined]
    assert any(line.strip().startswith("waiting for NAT gateway point-app-prod-nat-1a") for line in lines)
    assert any("available after" in line or "available at once on the emulator; on AWS this usually takes" in line
               for line in lines)


def test_the_nat_wait_says_the_figure_the_schedule_adds_up(ctx: Context) -> None:
    typical = schedule.TYPICAL["nat-gateway"]
    planned = pointapp.plan(ctx, only="network")
    assert engine.estimate(ctx, planned).durations["network: NAT gateway"] == typical.seconds
    pointapp.apply(ctx, planned)
    said = [line for line in ctx.lines if "NAT gateway point-app-prod-nat-1a" in line and "(usually" in line]  # type: ignore[attr-defined]
    assert len(said) == 2 and all(f"(usually {typical.spoken} on AWS)" in line for line in said), said


def _look_alikes() -> dict[str, str]:
    """Resources named like pointapp's but without its ownership tags (or with another environment's)."""
    client = ec2()
    name = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "point-app-prod-vpc"}]}]
    vpc = client.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=name)["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.0.8.0/24", AvailabilityZone="ap-northeast-1a",
                                  TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                      {"Key": "Name", "Value": "point-app-prod-subnet-private-container-1a"},
                                      {"Key": "pointapp:environment", "Value": "point-app-staging"},
                                      {"Key": "pointapp:step", "Value": "network"},
                                      {"Key": "pointapp:key", "Value": "subnet/container/0"}]}])["Subnet"]["SubnetId"]
    group = client.create_security_group(GroupName="point-app-prod-sg-db", Description="look-alike", VpcId=vpc)["GroupId"]
    client.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return {"vpc": vpc, "subnet": subnet, "group": group}


def _still_there(ids: dict[str, str]) -> None:
    client = ec2()
    assert client.describe_vpcs(VpcIds=[ids["vpc"]])["Vpcs"]
    assert client.describe_subnets(SubnetIds=[ids["subnet"]])["Subnets"]
    group = client.describe_security_groups(GroupIds=[ids["group"]])["SecurityGroups"][0]
    assert group["IpPermissions"][0]["FromPort"] == 22
    assert group["IpPermissions"][0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"


def test_look_alikes_survive_up_and_down(ctx: Context) -> None:
    ids = _look_alikes()
    up(ctx)
    _still_there(ids)
    assert len(topology()["vpcs"]) == 1  # its own, not the look-alike
    pointapp.down(ctx, only="network")
    _still_there(ids)
    assert topology()["vpcs"] == []


def test_down_keeps_a_vpc_that_holds_foreign_resources(ctx: Context) -> None:
    up(ctx)
    vpc = owned("vpcs", "Vpcs")[0]["VpcId"]
    foreign = ec2().create_subnet(VpcId=vpc, CidrBlock="10.0.100.0/24")["Subnet"]["SubnetId"]
    outcome = pointapp.down(ctx, only="network")
    assert len(outcome.warnings) == 1 and foreign in outcome.warnings[0] and "kept point-app-prod-vpc" in outcome.warnings[0]
    assert ec2().describe_subnets(SubnetIds=[foreign])["Subnets"]


@pytest.fixture(scope="session")
def clean() -> dict[str, Any]:
    """The topology of a clean run (names, not ids), built once in its own emulator state."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            up(make_context())
            return topology()


def test_drift_is_planned_and_repaired(clean: dict[str, Any], ctx: Context) -> None:
    up(ctx)
    client = ec2()
    groups = {name_of(g): g for g in owned("security_groups", "SecurityGroups")}
    db = groups["point-app-prod-sg-db"]
    management = groups["point-app-prod-sg-management"]["GroupId"]
    pair = next(pair for perm in db["IpPermissions"] for pair in perm["UserIdGroupPairs"]
                if pair["GroupId"] == management)
    client.revoke_security_group_ingress(GroupId=db["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [pair]}])
    client.authorize_security_group_ingress(GroupId=db["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    app = next(t for t in owned("route_tables", "RouteTables") if name_of(t) == "point-app-prod-rtb-app")
    client.delete_route(RouteTableId=app["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    planned = pointapp.plan(ctx, only="network")
    assert sorted((c.action, c.kind, c.name) for c in planned.changes) == [
        ("create", "route", "point-app-prod-rtb-app"),
        ("create", "security-group-rule", "point-app-prod-sg-db"),
        ("delete", "security-group-rule", "point-app-prod-sg-db"),
    ]
    pointapp.apply(ctx, planned)
    assert topology() == clean


def test_nat_modes_converge_both_ways(clean: dict[str, Any], ctx: Context) -> None:
    up(ctx)
    per_az = make_context(load_spec("prod", {"network": {"nat": "per-az"}}))
    up(per_az)
    found = topology()
    assert found["nats"] == [("point-app-prod-nat-1a", "point-app-prod-subnet-public-ingress-1a"),
                             ("point-app-prod-nat-1c", "point-app-prod-subnet-public-ingress-1c")]
    tables = {name: routes for name, routes, _ in found["route_tables"]}
    assert ("0.0.0.0/0", "point-app-prod-nat-1c") in tables["point-app-prod-rtb-app-1c"]
    assert "point-app-prod-rtb-app" not in tables
    assert pointapp.plan(per_az, only="network").empty
    none = make_context(load_spec("prod", {"network": {"nat": "none"}}))
    up(none)
    found = topology()
    assert found["nats"] == [] and found["addresses"] == []
    tables = {name: routes for name, routes, _ in found["route_tables"]}
    assert tables["point-app-prod-rtb-app"] == (("10.0.0.0/16", "local"),)
    up(make_context())
    assert topology() == clean


def test_certificate_opens_443_on_the_ingress_group(mocked: None) -> None:
    spec = load_spec("prod", {"service": {"certificate_arn": "arn:aws:acm:ap-northeast-1:123456789012:certificate/x"}})
    up(make_context(spec))
    ingress = [r for r in topology()["rules"] if r[0] == "point-app-prod-sg-ingress"]
    assert sorted((r[2], r[3]) for r in ingress) == [(80, "0.0.0.0/0"), (80, "::/0"), (443, "0.0.0.0/0"), (443, "::/0"),
                                                     (10080, "point-app-prod-sg-management")]


def test_prod_and_staging_live_side_by_side(clean: dict[str, Any], mocked: None) -> None:
    prod, staging = make_context(), make_context(load_spec("staging"))
    up(prod)
    up(staging)
    vpcs = sorted(name_of(v) for v in ec2().describe_vpcs()["Vpcs"] if name_of(v))
    assert vpcs == ["point-app-prod-vpc", "point-app-staging-vpc"]
    pointapp.down(staging, only="network")
    assert topology() == clean


def test_vpc_cidr_change_is_refused_with_advice(ctx: Context) -> None:
    up(ctx)
    moved = {name: {"cidrs": [c.replace("10.0.", "10.1.") for c in tier.cidrs]}
             for name, tier in ctx.spec.network.tiers.items()}
    other = make_context(load_spec("prod", {"network": {"vpc_cidr": "10.1.0.0/16", "tiers": moved}}))
    with pytest.raises(SpecError, match=r"network.vpc_cidr: the VPC point-app-prod-vpc .* exists with 10.0.0.0/16"):
        pointapp.plan(other, only="network")
    assert other.mutating_calls == []


def test_more_zones_than_the_region_offers(mocked: None) -> None:
    tiers = {name: {"cidrs": [f"10.0.{i * 8 + z}.0/24" for z in range(5)]}
             for i, name in enumerate(["ingress", "container", "db", "cache", "management", "egress"])}
    spec = load_spec("prod", {"network": {"zones": 5, "tiers": tiers}})
    ctx = make_context(spec)
    with pytest.raises(SpecError, match=r"network.zones: 5 zones asked but region ap-northeast-1 offers 3"):
        pointapp.plan(ctx, only="network")
    assert ctx.mutating_calls == []


def test_aws_errors_become_step_errors(ctx: Context) -> None:
    def deny(model: Any, **_: Any) -> dict[str, Any] | None:
        if model.name == "CreateSubnet":
            import botocore.exceptions

            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "You are not authorized"}}, "CreateSubnet")
        return None

    ctx.session.events.register("before-call.ec2.CreateSubnet", deny)
    with pytest.raises(StepError) as caught:
        up(ctx)
    assert str(caught.value) == ("step network: subnet point-app-prod-subnet-public-ingress-1a: "
                                 "You are not authorized (UnauthorizedOperation)")


def test_plan_is_pure(ctx: Context) -> None:
    observed = network.STEP.discover(ctx)
    before = len(ctx.calls)
    first = network.STEP.plan(ctx.spec, observed)
    second = network.STEP.plan(ctx.spec, observed)
    assert first == second and len(ctx.calls) == before


def flow_logs() -> list[tuple[str, str, str, str]]:
    vpcs = {v["VpcId"]: name_of(v) for v in owned("vpcs", "Vpcs")}
    return [(vpcs.get(f["ResourceId"], f["ResourceId"]), f["TrafficType"], f["LogGroupName"],
             f["DeliverLogsPermissionArn"].rsplit("/", 1)[-1])
            for f in ec2().describe_flow_logs(Filter=OWNER_FILTERS)["FlowLogs"]]


def test_flow_logs_record_all_traffic_to_a_log_group_with_retention(ctx: Context) -> None:
    up(ctx)
    assert flow_logs() == [("point-app-prod-vpc", "ALL", "/pointapp/point-app-prod/vpc-flow-logs",
                            "point-app-prod-vpc-flow-logs")]
    logs = boto3.client("logs", region_name=REGION)
    group = logs.describe_log_groups(logGroupNamePrefix="/pointapp/point-app-prod/vpc-flow-logs")["logGroups"]
    assert [g["retentionInDays"] for g in group] == [90]
    iam = boto3.client("iam", region_name=REGION)
    trust = iam.get_role(RoleName="point-app-prod-vpc-flow-logs")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    pointapp.down(ctx, only="network")
    assert flow_logs() == []
    assert logs.describe_log_groups(logGroupNamePrefix="/pointapp/point-app-prod/")["logGroups"] == []
    assert iam.list_roles(PathPrefix="/pointapp/")["Roles"] == []


def test_flow_logs_follow_the_spec(ctx: Context) -> None:
    up(ctx)
    off = make_context(load_spec("prod", {"network": {"flow_logs": False}}))
    planned = pointapp.plan(off, only="network")
    assert sorted((c.action, c.kind) for c in planned.changes) == [
        ("delete", "flow-log"), ("delete", "iam-role"), ("delete", "log-group")]
    pointapp.apply(off, planned)
    assert flow_logs() == []
    shorter = make_context(load_spec("prod", {"network": {"flow_logs_retention_days": 30}}))
    planned = pointapp.plan(shorter, only="network")
    assert sorted((c.action, c.kind) for c in planned.changes) == [
        ("create", "flow-log"), ("create", "iam-role"), ("create", "log-group")]
    pointapp.apply(shorter, planned)
    assert pointapp.plan(shorter, only="network").empty
    assert len(flow_logs()) == 1


def test_a_role_made_before_the_guard_gets_it_by_update(ctx: Context) -> None:
    pointapp.up(ctx, only="network")
    iam = boto3.client("iam", region_name=REGION)  # the flow log role as an earlier pointapp made it
    iam.update_assume_role_policy(RoleName="point-app-prod-vpc-flow-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]}))
    (change,) = pointapp.plan(make_context(), only="network").changes
    assert (change.action, change.kind, change.name) == ("update", "iam-role", "point-app-prod-vpc-flow-logs")
    assert "trust" in change.detail and "aws:SourceAccount" in change.detail
    pointapp.up(make_context(), only="network")
    trust = iam.get_role(RoleName="point-app-prod-vpc-flow-logs")["Role"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ctx.account}, "ArnLike": {
        "aws:SourceArn": f"arn:aws:ec2:{REGION}:{ctx.account}:vpc-flow-log/*"}}
    assert pointapp.plan(make_context(), only="network").empty


# --- the environment's KMS key, when its alias is missing -------------------------------------------------------

KEYED = {"security": {"kms_key": True}}
ALIAS = "alias/pointapp/point-app-prod"


def _customer_keys() -> dict[str, str]:
    """Every key moto holds, by id, with its state."""
    kms = boto3.client("kms", region_name=REGION)
    return {k["KeyId"]: kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in kms.list_keys()["Keys"]}


@pytest.mark.parametrize("lost", [False, True], ids=["create-alias-fails", "create-alias-answer-lost"])
def test_a_key_whose_alias_was_not_made_is_found_by_its_tags_not_made_twice(mocked: None, lost: bool) -> None:
    from tests.faults import InjectedFault, inject

    broken = make_context(load_spec("prod", KEYED))
    hit = inject(broken, 0, lost, operation="kms:CreateAlias")
    with pytest.raises(InjectedFault):
        pointapp.up(broken, only="network")
    assert hit == ["kms:CreateAlias"] and len(_customer_keys()) == 1
    # a key of another environment, and one this environment scheduled for deletion, are not the key
    kms = boto3.client("kms", region_name=REGION)
    (key_id,) = _customer_keys()
    for owner in ("point-app-staging", "point-app-prod"):
        other = kms.create_key(Tags=[{"TagKey": "pointapp:environment", "TagValue": owner},
                                     {"TagKey": "pointapp:step", "TagValue": "network"},
                                     {"TagKey": "pointapp:key", "TagValue": "kms/key"}])["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=other, PendingWindowInDays=7)  # the prod one
    # another tool's key has its alias: it is not the key sought, whose alias is missing, and is never read
    foreign = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/other-tool", TargetKeyId=foreign)
    again = make_context(load_spec("prod", KEYED))
    read: list[str] = []
    again.session.events.register("provide-client-params.kms.ListResourceTags",
                                  lambda params, **_: read.append(params["KeyId"]))
    creates = {c.kind for c in pointapp.plan(again, only="network").changes if c.action == "create"}
    assert "kms-key" not in creates and ("kms-alias" in creates) is not lost
    assert key_id in read and foreign not in read
    pointapp.up(again, only="network")
    keys = _customer_keys()
    assert len(keys) == 4 and kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"] == key_id  # no second key
    assert pointapp.plan(make_context(load_spec("prod", KEYED)), only="network").actionable == []
    pointapp.down(make_context(load_spec("prod", KEYED)), only="network")
    assert {k: s for k, s in _customer_keys().items() if s == "PendingDeletion"} == {key_id: "PendingDeletion",
                                                                                    other: "PendingDeletion"}
    assert [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == ALIAS] == []
