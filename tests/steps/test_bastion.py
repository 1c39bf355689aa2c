"""The bastion step on in-process moto: an SSM-only instance, its drift put back, its port forwarding."""

from __future__ import annotations

import pytest

import pointapp
from pointapp.errors import PointappError
from pointapp.steps import bastion
from pointapp.target import Context
from tests.steps.helpers import client, down_leaves_nothing, prod_with, up_is_idempotent

STEPS = "network,bastion"


prod = prod_with(STEPS)


def _instance() -> dict[str, object]:
    reservations = client("ec2").describe_instances(Filters=[{"Name": "tag:pointapp:step", "Values": ["bastion"]},
                                                             {"Name": "instance-state-name", "Values": ["running"]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    return instance


def test_bastion_is_ssm_only(prod: Context) -> None:
    network = prod.outputs("network")
    reservations = client("ec2").describe_instances(Filters=[{"Name": "tag:pointapp:step", "Values": ["bastion"]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in instance
    assert instance["SubnetId"] == network["subnet/management/0"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [network["sg/management"]]
    (group,) = client("ec2").describe_security_groups(GroupIds=[network["sg/management"]])["SecurityGroups"]
    assert group["IpPermissions"] == []
    assert instance["IamInstanceProfile"]["Arn"].endswith("/point-app-prod-bastion")
    policies = client("iam").list_attached_role_policies(RoleName="point-app-prod-bastion")["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AmazonSSMManagedInstanceCore"]
    image = client("ssm").get_parameter(Name=prod.spec.bastion.ami_parameter)["Parameter"]["Value"]
    assert instance["ImageId"] == image


def test_port_forwarding_commands(prod: Context) -> None:
    pointapp.up(prod, only="database,cache")
    table = bastion.port_forwarding(prod)
    assert [row[0] for row in table.rows] == ["database", "cache"]
    assert all("AWS-StartPortForwardingSessionToRemoteHost" in row[3] for row in table.rows)
    assert "portNumber=3306,localPortNumber=13306" in table.rows[0][3]


def test_port_forwarding_lists_only_what_is_up(prod: Context) -> None:
    pointapp.up(prod, only="database")
    table = bastion.port_forwarding(prod)
    address = prod.outputs("database")["instance/address"]
    ((to, remote, local, command),) = table.rows  # no cache yet: no row for it
    assert (to, remote, local) == ("database", f"{address}:3306", "127.0.0.1:13306")
    assert f"--region ap-northeast-1 --target {prod.outputs('bastion')['instance']} " in command
    assert f"host={address}," in command


def test_port_forwarding_needs_a_bastion(ctx: Context) -> None:
    with pytest.raises(PointappError, match=r"^no bastion in point-app-prod: run `pointapp up --only bastion` first$"):
        bastion.port_forwarding(ctx)


def test_the_bastion_says_what_it_runs_and_how_long_it_usually_takes(prod: Context) -> None:
    lines: list[str] = [line.strip() for line in prod.lines]  # type: ignore[attr-defined]
    image = client("ssm").get_parameter(Name=prod.spec.bastion.ami_parameter)["Parameter"]["Value"]
    assert f"AMI {image} from {prod.spec.bastion.ami_parameter}" in lines
    running = f"waiting for bastion point-app-prod-bastion ({_instance()['InstanceId']}) to run (usually about a minute on AWS) ..."
    assert running in lines


def test_drift_of_the_bastion_is_put_back_in_place(prod: Context) -> None:
    network = prod.outputs("network")
    instance = str(_instance()["InstanceId"])
    ec2, iam = client("ec2"), client("iam")
    ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional")
    ec2.modify_instance_attribute(InstanceId=instance, Groups=[network["sg/db"]])
    ec2.delete_tags(Resources=[instance], Tags=[{"Key": "Project"}])
    iam.remove_role_from_instance_profile(InstanceProfileName="point-app-prod-bastion", RoleName="point-app-prod-bastion")
    iam.untag_instance_profile(InstanceProfileName="point-app-prod-bastion", TagKeys=["Project"])
    planned = pointapp.plan(prod, only="bastion")
    assert [(c.action, c.kind, c.args["differences"]) for c in planned.changes] == [
        ("update", "instance-profile", {"role": "point-app-prod-bastion", "tags": {"Project": "point-app"}}),
        ("update", "ec2-instance", {"imdsv2": "required", "groups": [network["sg/management"]],
                                    "tags": {"Project": "point-app"}})]
    before = len(prod.calls)
    pointapp.apply(prod, planned)
    # Changed in place, the tags by their own call first: the instance is the same one.
    assert [(c.service, c.operation) for c in prod.calls[before:] if c.mutating] == [
        ("iam", "TagInstanceProfile"), ("iam", "AddRoleToInstanceProfile"),
        ("ec2", "CreateTags"), ("ec2", "ModifyInstanceMetadataOptions"), ("ec2", "ModifyInstanceAttribute")]
    now = _instance()
    assert now["InstanceId"] == instance and now["MetadataOptions"]["HttpTokens"] == "required"
    assert [g["GroupId"] for g in now["SecurityGroups"]] == [network["sg/management"]]
    assert {"Key": "Project", "Value": "point-app"} in now["Tags"]
    profile = iam.get_instance_profile(InstanceProfileName="point-app-prod-bastion")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["point-app-prod-bastion"]
    assert pointapp.plan(prod, only="bastion").empty


def test_idempotent(prod: Context) -> None:
    up_is_idempotent(prod, STEPS)


def test_down_removes_the_bastion_its_profile_and_role(prod: Context) -> None:
    instance = _instance()["InstanceId"]
    assert down_leaves_nothing(prod, "bastion") == []
    (terminated,) = [i for r in client("ec2").describe_instances(InstanceIds=[instance])["Reservations"] for i in r["Instances"]]
    assert terminated["State"]["Name"] == "terminated"
    assert client("iam").list_instance_profiles(PathPrefix="/pointapp/")["InstanceProfiles"] == []
    roles = [r["RoleName"] for r in client("iam").list_roles(PathPrefix="/pointapp/")["Roles"]]
    assert "point-app-prod-bastion" not in roles and roles == ["point-app-prod-vpc-flow-logs"]  # the network's stays
    lines: list[str] = [line.strip() for line in prod.lines]  # type: ignore[attr-defined]
    assert (f"waiting for bastion point-app-prod-bastion ({instance}) to terminate (usually about a minute on AWS) ..."
            in lines)


def test_a_public_bastion_of_an_earlier_layout_is_made_private(ctx: Context) -> None:
    """Before EC2.9/EC2.15, the management subnets were public (the ingress table, a public IP on launch): the
    plan turns the subnets private and replaces the bastion, whose launch-time address cannot be taken off."""
    pointapp.up(ctx, only="network")
    network = ctx.outputs("network")
    ec2 = client("ec2")
    ec2.modify_subnet_attribute(SubnetId=network["subnet/management/0"], MapPublicIpOnLaunch={"Value": True})
    tables = ec2.describe_route_tables(RouteTableIds=[network["rtb/management"]])["RouteTables"]
    (association,) = [a for a in tables[0]["Associations"] if a.get("SubnetId") == network["subnet/management/0"]]
    ec2.replace_route_table_association(AssociationId=association["RouteTableAssociationId"],
                                        RouteTableId=network["rtb/ingress"])
    pointapp.apply(ctx, pointapp.plan(ctx, only="bastion", dependencies="ignore"))
    old = _instance()
    assert old.get("PublicIpAddress")
    planned = pointapp.plan(ctx, only=STEPS)
    lines = [c.line() for c in planned.changes]
    assert [(c.action, c.kind, c.name) for c in planned.changes] == [
        ("update", "subnet", "point-app-prod-subnet-private-management-1a"),
        ("update", "route-association", "point-app-prod-rtb-management"),
        ("delete", "ec2-instance", "point-app-prod-bastion"), ("create", "ec2-instance", "point-app-prod-bastion")]
    assert lines[0].endswith("public IP on launch: true -> false")
    assert lines[1].endswith("point-app-prod-subnet-private-management-1a (from point-app-prod-rtb-ingress)")
    assert lines[2].endswith(f"(replaced: has the public IP {old['PublicIpAddress']}; the bastion has none "
                             "(SSM only, FSBP EC2.9))")
    pointapp.apply(ctx, planned)
    new = _instance()
    assert new["InstanceId"] != old["InstanceId"] and "PublicIpAddress" not in new
    subnet = ec2.describe_subnets(SubnetIds=[network["subnet/management/0"]])["Subnets"][0]
    assert subnet["MapPublicIpOnLaunch"] is False
    assert pointapp.plan(ctx, only=STEPS).empty
