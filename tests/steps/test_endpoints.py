from __future__ import annotations

import boto3

import pointapp
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.steps.helpers import down_leaves_nothing, up_is_idempotent


def endpoints() -> dict[str, dict]:  # type: ignore[type-arg]
    ec2 = boto3.client("ec2", region_name=REGION)
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "tag:pointapp:step", "Values": ["endpoints"]}])["VpcEndpoints"]
    return {e["ServiceName"].rsplit(".", 1)[-1] if "ecr" not in e["ServiceName"] else e["ServiceName"].split(".", 3)[-1]: e
            for e in found if e["State"].lower() not in ("deleted", "deleting")}


def network_ids(ctx: Context) -> dict[str, str]:
    return ctx.outputs("network")


def test_endpoints_in_the_egress_subnets_with_the_egress_group(ctx: Context) -> None:
    pointapp.up(ctx, only="network,endpoints")
    ids = network_ids(ctx)
    found = endpoints()
    assert sorted(found) == ["ecr.api", "ecr.dkr", "logs", "s3", "secretsmanager"]
    for service in ("ecr.api", "ecr.dkr", "logs", "secretsmanager"):
        endpoint = found[service]
        assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"]
        assert endpoint["VpcId"] == ids["vpc"]
        assert sorted(endpoint["SubnetIds"]) == sorted([ids["subnet/egress/0"], ids["subnet/egress/1"]])
        assert [g["GroupId"] for g in endpoint["Groups"]] == [ids["sg/egress"]]
        assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.{service}"
    s3 = found["s3"]
    assert s3["VpcEndpointType"] == "Gateway" and s3["RouteTableIds"] == [ids["rtb/app"]]


def test_idempotent_and_clean_down(ctx: Context) -> None:
    pointapp.up(ctx, only="network,endpoints")
    up_is_idempotent(ctx, "network,endpoints")
    assert down_leaves_nothing(ctx, "endpoints,network") == []
    assert endpoints() == {}


def test_the_list_is_configurable_and_converges(ctx: Context) -> None:
    pointapp.up(ctx, only="network,endpoints")
    fewer = make_context(load_spec("prod", {"endpoints": {"interface": ["ecr.api", "ecr.dkr", "logs"], "s3_gateway": False}}))
    planned = pointapp.plan(fewer, only="endpoints")
    assert sorted((c.action, c.name) for c in planned.changes) == [
        ("delete", "point-app-prod-vpce-s3"), ("delete", "point-app-prod-vpce-secretsmanager")]
    pointapp.apply(fewer, planned)
    assert sorted(endpoints()) == ["ecr.api", "ecr.dkr", "logs"]


def test_per_az_nat_puts_s3_on_both_app_tables(mocked: None) -> None:
    ctx = make_context(load_spec("prod", {"network": {"nat": "per-az"}}))
    pointapp.up(ctx, only="network,endpoints")
    ids = ctx.outputs("network")
    assert sorted(endpoints()["s3"]["RouteTableIds"]) == sorted([ids["rtb/app/0"], ids["rtb/app/1"]])


def test_drifted_endpoint_is_repaired(ctx: Context) -> None:
    pointapp.up(ctx, only="network,endpoints")
    ids = network_ids(ctx)
    logs = endpoints()["logs"]
    boto3.client("ec2", region_name=REGION).modify_vpc_endpoint(
        VpcEndpointId=logs["VpcEndpointId"], RemoveSubnetIds=[ids["subnet/egress/1"]])
    planned = pointapp.plan(ctx, only="endpoints")
    assert [(c.action, c.name) for c in planned.changes] == [("update", "point-app-prod-vpce-logs")]
    pointapp.apply(ctx, planned)
    assert sorted(endpoints()["logs"]["SubnetIds"]) == sorted([ids["subnet/egress/0"], ids["subnet/egress/1"]])


def test_endpoints_without_the_network_is_a_clear_error(ctx: Context) -> None:
    import pytest

    from pointapp.errors import DependencyError

    with pytest.raises(DependencyError, match=r"^the endpoints need the network: run 01_network.ipynb first$"):
        pointapp.up(ctx, only="endpoints")
    assert ctx.mutating_calls == []


def test_each_endpoint_allows_this_account_only_and_an_open_policy_converges(ctx: Context) -> None:
    import json

    pointapp.up(ctx, only="network,endpoints")
    account, vpc = ctx.account, network_ids(ctx)["vpc"]
    found = endpoints()
    for service, endpoint in found.items():
        statements = json.loads(endpoint["PolicyDocument"])["Statement"]
        assert statements[0] == {"Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*", "Action": "*",
                                 "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalAccount": account}}}
        assert len(statements) == (2 if service == "s3" else 1), service
    # ECR's layers, fetched by URLs ECR signs itself: the layer bucket, read only, from this VPC
    assert json.loads(found["s3"]["PolicyDocument"])["Statement"][1] == {
        "Sid": "EcrImageLayers", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*",
        "Condition": {"StringEquals": {"aws:SourceVpc": vpc}}}
    # an endpoint of an earlier pointapp, with AWS's default policy (any principal): ModifyVpcEndpoint puts it right
    open_policy = {"Statement": [{"Action": "*", "Effect": "Allow", "Principal": "*", "Resource": "*"}]}
    boto3.client("ec2", region_name=REGION).modify_vpc_endpoint(
        VpcEndpointId=found["logs"]["VpcEndpointId"], PolicyDocument=json.dumps(open_policy))
    planned = pointapp.plan(ctx, only="endpoints")
    (change,) = planned.changes
    assert (change.action, change.name, list(change.args["differences"])) == ("update", "point-app-prod-vpce-logs", ["policy"])
    before = len(ctx.calls)
    pointapp.apply(ctx, planned)
    assert [c.operation for c in ctx.calls[before:] if c.mutating] == ["ModifyVpcEndpoint"]
    assert json.loads(endpoints()["logs"]["PolicyDocument"]) == json.loads(found["logs"]["PolicyDocument"])


def test_without_a_nat_gateway_the_bastion_gets_the_ssm_endpoints() -> None:
    from pointapp.steps.endpoints import desired

    names = [d.name for d in desired(load_spec("prod", {"network": {"nat": "none"}}))]
    assert names[-4:] == ["point-app-prod-vpce-ssm", "point-app-prod-vpce-ssmmessages",
                          "point-app-prod-vpce-ec2messages", "point-app-prod-vpce-s3"]
    assert not any("ssm" in d.name for d in desired(load_spec("prod")))  # the NAT gateway takes the agent out
