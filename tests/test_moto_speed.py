"""The tests' faster moto (tests/moto_speed.py) answers byte for byte as moto does."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import REGION
from tests.moto_speed import as_shipped

#: What differs between two answers to the same request: the request's id, and a token for the next page.
REQUEST_ID = re.compile(rb'<(requestId|RequestId)>[^<]*</(requestId|RequestId)>|"PaginationToken": "[^"]*"')


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
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="point-app-prod/web",
                                                              tags={t["Key"]: t["Value"] for t in tags})
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    ours = [{"Key": "pointapp:environment", "Values": ["prod"]}]
    requests: list[tuple[Any, str, dict[str, Any]]] = [
        (ec2, "describe_vpcs", {}), (ec2, "describe_subnets", {}), (ec2, "describe_security_groups", {}),
        (ec2, "describe_route_tables", {}), (ec2, "describe_vpc_endpoints", {}),
        (ec2, "describe_tags", {"Filters": [{"Name": "resource-id", "Values": [f"{vpc[:6]}*"]}]}),
        (ec2, "describe_security_group_rules", {}), (iam, "list_roles", {}),
        (iam, "get_role", {"RoleName": "point-app-prod-task"}),
        *((tagging, "get_resources", {"TagFilters": ours, "ResourceTypeFilters": types})
          for types in (["logs", "s3"], ["ec2"], ["ec2:subnet", "logs"], ["elasticloadbalancing"])),
        (tagging, "get_resources", {"TagFilters": ours}), (tagging, "get_resources", {"ResourcesPerPage": 2}),
    ]
    faster = [raw_answer(client, operation, **params) for client, operation, params in requests]
    with as_shipped():
        shipped = [raw_answer(client, operation, **params) for client, operation, params in requests]
    assert b"tier" in faster[1] and b"point-app-prod" in faster[4]  # the answers carry the tags
    assert b"log-group:point-app-prod/web" in faster[9] and b"subnet/" in faster[10] and b"subnet/" in faster[11]
    for (_, operation, _), ours, theirs in zip(requests, faster, shipped, strict=True):
        assert ours == theirs, operation


def test_the_default_amis_are_made_when_their_images_or_snapshots_are_first_read(mocked: None) -> None:
    """moto's default AMIs (each with its snapshot) are made on the backend's first read of either; what that
    read answers is what moto makes at the backend's start: every default AMI of the Region, one snapshot each."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import AMIS
    from moto.utilities.utils import load_resource

    from tests.moto_speed import _AMIS_DEFERRED

    defaults = {ami["ami_id"] for ami in AMIS}
    for folder in ("latest_amis", "ecs/optimized_amis"):
        defaults |= {ami["ami_id"] for ami in load_resource(f"ec2/resources/{folder}/{REGION}.json")}
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.describe_vpcs()
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    assert backend.__dict__.get(_AMIS_DEFERRED) is True  # a read of VPCs makes no AMI
    snapshots = ec2.describe_snapshots()["Snapshots"]  # the first read: of the snapshots
    assert _AMIS_DEFERRED not in backend.__dict__
    assert len(snapshots) == len(defaults) and all(s["Description"].startswith("Auto-created snapshot for AMI")
                                                   for s in snapshots)
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    assert {image["ImageId"] for image in images} == defaults
    assert len(ec2.describe_snapshots()["Snapshots"]) == len(defaults)  # made once


def test_an_ami_asked_for_by_id_is_made_alone_and_keeps_its_place_among_the_rest(mocked: None) -> None:
    """RunInstances reads its AMI by id: that AMI alone is made (with its snapshot). Once the rest are made,
    every listing is moto's: the same AMIs and snapshots in the same order as when all are made at once, the
    early AMI with the snapshot it was made with, none twice."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict
    from moto.ec2.models import ec2_backends

    from tests.moto_speed import _AMIS_DEFERRED

    ec2 = boto3.client("ec2", region_name=REGION)

    def listings() -> tuple[list[str], list[str], dict[str, str]]:
        images = ec2.describe_images(Owners=["amazon"])["Images"]
        snapshots = [s["Description"] for s in ec2.describe_snapshots()["Snapshots"]]
        return [i["ImageId"] for i in images], snapshots, {i["ImageId"]: i["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
                                                           for i in images}

    wanted = ec2.describe_images(Owners=["amazon"])["Images"][500]["ImageId"]
    moto_images, moto_snapshots, _ = listings()  # all made at once, as moto makes them
    BackendDict.reset()
    ec2.describe_vpcs()
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    (alone,) = ec2.describe_images(ImageIds=[wanted])["Images"]
    subnet = ec2.create_subnet(VpcId=ec2.describe_vpcs()["Vpcs"][0]["VpcId"], CidrBlock="172.31.200.0/24")["Subnet"]
    ec2.run_instances(ImageId=wanted, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"])
    assert backend.__dict__.get(_AMIS_DEFERRED) is True  # the rest are not made yet
    assert ec2.describe_images(Filters=[{"Name": "image-id", "Values": [wanted]}])["Images"] == [alone]
    images, snapshots, snapshot_of = listings()
    assert _AMIS_DEFERRED not in backend.__dict__
    assert images == moto_images and snapshots == moto_snapshots
    assert snapshot_of[wanted] == alone["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    BackendDict.reset()
    with pytest.raises(ClientError, match="InvalidAMIID"):
        ec2.describe_images(ImageIds=["ami-00000000000000000"])  # not a default AMI: moto's own answer


def test_requests_side_by_side_all_wait_for_the_default_amis(mocked: None) -> None:
    """Threads that first read the AMIs at once (discovery and steps run side by side) each see all of them:
    the one making them does so once, the others wait for it."""
    from concurrent.futures import ThreadPoolExecutor

    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.describe_vpcs()  # the backend, with its AMIs not made yet
    with ThreadPoolExecutor(6) as pool:
        counts = list(pool.map(lambda _: len(ec2.describe_images(Owners=["amazon"])["Images"]), range(6)))
    assert counts[0] > 1000 and set(counts) == {counts[0]}
    assert len(ec2.describe_snapshots()["Snapshots"]) == counts[0]


def test_a_listing_of_tagged_resources_that_filters_ec2_out_does_not_walk_its_resources(mocked: None) -> None:
    """The tagging API's listing filtered to other services walks none of EC2's resources (so it makes no
    default AMI); filtered to an EC2 type, it does."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    from tests.moto_speed import _AMIS_DEFERRED

    boto3.client("ec2", region_name=REGION).describe_vpcs()
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    tagging.get_resources(ResourceTypeFilters=["logs", "s3"])
    assert backend.__dict__.get(_AMIS_DEFERRED) is True
    images = tagging.get_resources(ResourceTypeFilters=["ec2:image"])["ResourceTagMappingList"]
    assert _AMIS_DEFERRED not in backend.__dict__ and images == []  # walked: the default AMIs carry no tag


def test_xml_written_directly_is_what_xmltodict_writes() -> None:
    """The serializer's XML, written without xmltodict, is the same text, for every shape of document."""
    import xmltodict
    from moto.core import serialize

    direct = serialize.xmltodict
    assert direct is not xmltodict  # the tests' moto writes it directly
    documents: list[dict[str, Any]] = [
        {"DescribeVpcsResponse": {"@xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": "r-1",
                                  "vpcSet": {"item": [{"vpcId": "vpc-1", "isDefault": False, "tagSet": {"item": []},
                                                       "cidrBlock": "10.0.0.0/16", "count": 3, "none": None},
                                                      {"vpcId": "vpc-2", "isDefault": True, "empty": ""}]}}},
        {"A": {"@quote": 'say "hi" & \'bye\'\n', "@n": 7, "@none": None, "text": "<&>\"'", "#text": "tail & more",
               "nested": [{"x": 1}, None, "plain", 2.5, b"bytes"], "skipped": [], "t": ("a", "b")}},
        {"Empty": {}}, {"Empty": None}, {"Empty": ""}, {"Only": {"#text": None}}, {"Root": [{"a": 1}]},
    ]
    for document in documents:
        for full_document in (True, False):
            for short in (True, False):
                mine = direct.unparse(document, full_document=full_document, short_empty_elements=short, pretty=False)
                theirs = xmltodict.unparse(document, full_document=full_document, short_empty_elements=short, pretty=False)
                assert mine == theirs, (document, full_document, short)
    generated = {"A": {"gen": (i for i in range(2))}}
    assert direct.unparse(generated, short_empty_elements=True) == xmltodict.unparse(
        {"A": {"gen": (i for i in range(2))}}, short_empty_elements=True)
    for bad in ({"a": 1, "b": 2}, {}, {"bad name": 1}, {"a": {"@x y": 1}}, {"a": [1, 2]}):
        with pytest.raises(ValueError) as mine_error:
            direct.unparse(bad)
        with pytest.raises(ValueError) as their_error:
            xmltodict.unparse(bad)
        assert str(mine_error.value) == str(their_error.value)
    # what moto never sends goes to xmltodict itself
    commented = {"a": {"#comment": "note", "b": 1}}
    assert direct.unparse(commented) == xmltodict.unparse(commented)
    assert direct.unparse({"a": {"b": 1}}, pretty=True) == xmltodict.unparse({"a": {"b": 1}}, pretty=True)


def test_every_answer_of_an_up_is_written_as_xmltodict_writes_it(ctx: Any) -> None:
    """Every XML document moto's serializer writes during a full ``up`` (EC2's query answers, the REST XML
    of S3 and Route 53, IAM's, RDS's, ...) is the text xmltodict writes for it."""
    import xmltodict
    from moto.core import serialize

    import pointapp

    direct = serialize.xmltodict
    compared: list[str] = []
    differing: list[str] = []

    def both(document: Any, *args: Any, **kwargs: Any) -> str:
        theirs = xmltodict.unparse(document, *args, **kwargs)
        mine = type(direct).unparse(direct, document, *args, **kwargs)
        compared.append(next(iter(document)))
        if mine != theirs:
            differing.append(next(iter(document)))
        return mine

    direct.unparse = both
    try:
        pointapp.up(ctx)
    finally:
        del direct.unparse
    assert len(set(compared)) > 30 and differing == []
