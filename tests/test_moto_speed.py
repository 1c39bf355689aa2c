"""The tests' faster moto (tests/moto_speed.py) answers byte for byte as moto does."""

from __future__ import annotations

import re
from typing import Any

import boto3

from tests.conftest import REGION
from tests.moto_speed import as_shipped

#: What differs between two answers to the same request: the request's id.
REQUEST_ID = re.compile(rb"<(requestId|RequestId)>[^<]*</(requestId|RequestId)>")


def raw_answer(client: Any, operation: str, **params: Any) -> bytes:
    bodies: list[bytes] = []

    def keep(response_dict: dict[str, Any], **_: Any) -> None:
        bodies.append(response_dict["body"])

    client.meta.events.register("before-parse", keep)
    try:
        getattr(client, operation)(**params)
    finally:
        client.meta.events.unregister("before-parse", keep)
    return REQUEST_ID.sub(b"", bodies[0])


def test_answers_are_those_of_moto_as_shipped(mocked: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    tags = [{"Key": "Name", "Value": "point-app-prod"}, {"Key": "pointapp:environment", "Value": "prod"}]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
    for i in range(3):
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{'acd'[i]}",
                          TagSpecifications=[{"ResourceType": "subnet", "Tags": [*tags, {"Key": "tier", "Value": str(i)}]}])
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.9.0/24")  # untagged
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc,
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.create_route_table(VpcId=vpc, TagSpecifications=[{"ResourceType": "route-table", "Tags": tags}])
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway",
                            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": tags}])
    iam.create_role(RoleName="point-app-prod-task", AssumeRolePolicyDocument="{}", Tags=tags)
    requests: list[tuple[Any, str, dict[str, Any]]] = [
        (ec2, "describe_vpcs", {}), (ec2, "describe_subnets", {}), (ec2, "describe_security_groups", {}),
        (ec2, "describe_route_tables", {}), (ec2, "describe_vpc_endpoints", {}),
        (ec2, "describe_tags", {"Filters": [{"Name": "resource-id", "Values": [f"{vpc[:6]}*"]}]}),
        (ec2, "describe_security_group_rules", {}), (iam, "list_roles", {}),
        (iam, "get_role", {"RoleName": "point-app-prod-task"}),
    ]
    faster = [raw_answer(client, operation, **params) for client, operation, params in requests]
    with as_shipped():
        shipped = [raw_answer(client, operation, **params) for client, operation, params in requests]
    assert b"tier" in faster[1] and b"point-app-prod" in faster[4]  # the answers carry the tags
    for (_, operation, _), ours, theirs in zip(requests, faster, shipped, strict=True):
        assert ours == theirs, operation
