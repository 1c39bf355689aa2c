"""Lean discovery on in-process moto: how many reads a run makes, and that saving them changes no answer."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

import boto3
import botocore.exceptions
import pytest

import pointapp
from pointapp import steps as registry
from pointapp.spec import load_spec
from pointapp.steps import database, network
from pointapp.target import Call, Context
from tests.conftest import REGION, make_context, stub

#: Per-resource tag reads that one GetResources listing replaces where the target lists the type.
LISTED_TAG_READS = {("logs", "ListTagsLogGroup"), ("elasticache", "ListTagsForResource"),
                    ("codedeploy", "ListTagsForResource"), ("s3", "GetBucketTagging")}


def reads(calls: list[Call]) -> Counter[tuple[str, str]]:
    return Counter((c.service, c.operation) for c in calls if not c.mutating)


@pytest.fixture
def built(ctx: Context) -> Context:
    pointapp.up(ctx)
    return ctx


def test_a_no_op_up_reads_each_thing_once(built: Context) -> None:
    before = len(built.calls)
    outcome = pointapp.up(built)
    calls = built.calls[before:]
    assert outcome.applied == [] and [c for c in calls if c.mutating] == []
    counted = reads(calls)
    # Two VPC attributes (DNS support, DNS hostnames) are two calls by the API's design, each setting of the two
    # buckets (artifacts, access logs) one call per bucket, and the tags of the DB parameter group and the backup
    # plan's (which moto's tagging listing lacks) one call each; nothing else repeats.
    per_bucket = ("GetBucketVersioning", "GetPublicAccessBlock", "GetBucketEncryption", "GetBucketLifecycleConfiguration",
                  "GetBucketPolicy")
    assert {op: n for op, n in counted.items() if n > 1} == {("ec2", "DescribeVpcAttribute"): 2,
                                                             ("rds", "ListTagsForResource"): 2,
                                                             **{("s3", op): 2 for op in per_bucket}}
    assert counted[("resourcegroupstaggingapi", "GetResources")] == 1
    assert not set(counted) & LISTED_TAG_READS, "tags the listing holds were read again one by one"
    # Found by name, with the roles and tags in one answer; the group's call tells the application exists.
    assert ("iam", "ListInstanceProfiles") not in counted and ("codedeploy", "GetApplication") not in counted
    # The database's description carries its subnet group; the built subnets give the zones.
    assert ("rds", "DescribeDBSubnetGroups") not in counted and ("ec2", "DescribeAvailabilityZones") not in counted
    assert sum(counted.values()) <= 66, sorted(counted.items())  # 8 of them the parameter group and backup plan


def test_a_full_up_discovers_each_step_once_and_hands_on_what_it_built(ctx: Context) -> None:
    pointapp.up(ctx, parallel=4)
    counted = reads(ctx.calls)
    # The plan's discovery reads the network once; the steps that use it take the ids the apply left.
    assert counted[("ec2", "DescribeSubnets")] == 1 and counted[("ec2", "DescribeRouteTables")] == 1
    assert counted[("iam", "GetAccountAuthorizationDetails")] == 1
    assert counted[("resourcegroupstaggingapi", "GetResources")] == 1
    # Beyond the plan's discovery, a resource is read only by the waiter that polls it (once on the
    # emulator), whose last answer is kept: no describe after the wait.
    polled = {("ec2", "DescribeVpcs"), ("ec2", "DescribeNatGateways"), ("ec2", "DescribeInstances"),
              ("rds", "DescribeDBInstances"), ("elasticache", "DescribeReplicationGroups"),
              ("elbv2", "DescribeLoadBalancers"),
              ("s3", "GetBucketTagging")}  # not polled: the two buckets, each read once (the listing holds neither yet)
    assert {op for op, n in counted.items() if n > 1} == polled and max(counted.values()) == 2
    fresh = make_context()
    for step in registry.STEPS:
        assert ctx.outputs(step.name) == fresh.outputs(step.name), step.name


def test_tags_are_read_one_by_one_when_the_listing_is_refused(built: Context) -> None:
    refused = stub(built, "resourcegroupstaggingapi")
    refused.add_client_error("get_resources", "AccessDeniedException", "not allowed: tag:GetResources")
    before = len(built.calls)
    assert pointapp.plan(built).empty
    counted = reads(built.calls[before:])
    assert LISTED_TAG_READS <= set(counted)
    refused.assert_no_pending_responses()


def test_a_look_alike_the_listing_leaves_out_is_checked_on_its_own(built: Context) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/pointapp/point-app-prod/someone-elses", tags={"team": "data"})
    logs.create_log_group(logGroupName="/pointapp/point-app-prod/other-env",
                          tags={"pointapp:environment": "point-app-staging", "pointapp:step": "service",
                                "pointapp:key": "logs"})
    before = len(built.calls)
    planned = pointapp.plan(built)
    assert planned.empty, [c.line() for c in planned.changes]
    # Only the two log groups the listing does not hold (not this environment's) were asked for their tags.
    assert reads(built.calls[before:])[("logs", "ListTagsLogGroup")] == 2
    pointapp.down(built)
    left = {g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/pointapp/")["logGroups"]}
    assert left == {"/pointapp/point-app-prod/someone-elses", "/pointapp/point-app-prod/other-env"}


def test_a_built_network_keeps_its_zones(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    pointapp.up(ctx, only="network")
    built_zones = network.STEP.discover(ctx).facts["zones"]
    # AWS lists a zone as impaired for a while: the region's list changes, the network does not move.
    monkeypatch.setattr(network.discovery, "available_zones", lambda _: [f"{REGION}d", f"{REGION}c"])
    assert pointapp.plan(ctx, only="network").empty
    assert network.STEP.discover(ctx).facts["zones"] == built_zones
    # Asked for a third zone: the region's list decides where the new subnets go.
    monkeypatch.setattr(network.discovery, "available_zones", lambda _: [f"{REGION}a", f"{REGION}c", f"{REGION}d"])
    spec = load_spec("prod", {"network": {"zones": 3, "tiers": {
        name: {"cidrs": [*tier.cidrs, _third(tier.cidrs)]} for name, tier in ctx.spec.network.tiers.items()}}})
    wider = make_context(spec)
    subnets = [c for c in pointapp.plan(wider, only="network").changes if c.kind == "subnet"]
    assert {c.action for c in subnets} == {"create"} and all(c.key.endswith("/2") for c in subnets)
    assert all(f"{REGION}d" in c.detail for c in subnets), [c.detail for c in subnets]


def _third(cidrs: Any) -> str:
    """The block after the tier's last one (the default tiers use consecutive /24 blocks)."""
    last = ipaddress.ip_network(cidrs[-1])
    return str(ipaddress.ip_network((int(last.network_address) + last.num_addresses, last.prefixlen)))


def test_an_application_without_its_deployment_group_is_found(built: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    codedeploy = built.client("codedeploy")

    def no_group(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "DeploymentGroupDoesNotExistException", "Message": "gone"}}, "GetDeploymentGroup")

    monkeypatch.setattr(codedeploy, "get_deployment_group", no_group)
    before = len(built.calls)
    planned = pointapp.plan(built, only="delivery")
    # The application is asked for on its own only now, and is kept; only the group is to be made.
    assert [(c.action, c.kind) for c in planned.changes] == [("create", "deployment-group")]
    assert reads(built.calls[before:])[("codedeploy", "GetApplication")] == 1


def test_the_db_subnet_group_read_from_the_instance_is_the_one_rds_describes(built: Context) -> None:
    before = len(built.calls)
    found = database.STEP.discover(built).found["subnet-group"]
    assert ("rds", "DescribeDBSubnetGroups") not in reads(built.calls[before:])
    (described,) = boto3.client("rds", region_name=REGION).describe_db_subnet_groups(
        DBSubnetGroupName="point-app-prod-db-subnets")["DBSubnetGroups"]
    assert found.raw["DBSubnetGroupArn"] == described["DBSubnetGroupArn"]
    assert sorted(s["SubnetIdentifier"] for s in found.raw["Subnets"]) == sorted(
        s["SubnetIdentifier"] for s in described["Subnets"])
    assert found.tags["pointapp:key"] == "subnet-group"


def test_the_tag_listing_request_is_valid_for_aws(mocked: None) -> None:
    """The GetResources request, checked against botocore's service model, and its answer used by ARN."""
    from pointapp import kinds
    from tests.conftest import aws_context

    ctx = aws_context()
    group = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/pointapp/point-app-prod/api"
    tags = {"pointapp:environment": "point-app-prod", "pointapp:step": "service", "pointapp:key": "logs"}
    tagging = stub(ctx, "resourcegroupstaggingapi")
    tagging.add_response("get_resources", {"ResourceTagMappingList": [
        {"ResourceARN": group, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]},
        {"TagFilters": [{"Key": "pointapp:environment", "Values": ["point-app-prod"]}],
         "ResourceTypeFilters": list(kinds.LISTED_SERVICES), "TagsPerPage": 500})

    def not_needed() -> dict[str, str]:
        raise AssertionError("the listing holds this resource's tags")

    # Logs describes a group's ARN with ":*"; the listing names it without.
    assert kinds.tags_of(ctx, group + ":*", not_needed) == tags
    assert kinds.tags_of(ctx, group.replace("/api", "/other"), lambda: {"team": "data"}) == {"team": "data"}
    tagging.assert_no_pending_responses()


def test_a_second_plan_in_one_run_sees_what_changed_outside_it(ctx: Context) -> None:
    """The listings several steps share (every IAM role, the network's listings) are read afresh by each
    discovery: a change made outside this run between two plans shows in the second."""
    pointapp.up(ctx, only="network")
    assert pointapp.plan(ctx, "network").actionable == []
    iam = boto3.client("iam", region_name=REGION)  # outside the run: no call of the context clears its reads
    role = ctx.spec.name("vpc-flow-logs")
    iam.delete_role_policy(RoleName=role, PolicyName="deliver")
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ctx.outputs("network")["vpc"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]
    ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    drift = {(c.kind, c.action) for c in pointapp.plan(ctx, "network").actionable}
    assert {("iam-role", "update"), ("subnet", "update")} <= drift
