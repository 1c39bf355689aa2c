"""The ``bastion`` step: a small EC2 instance in a private management subnet for operators, reached only
through SSM Session Manager: no public IP; its agent reaches SSM through the NAT gateway (or the SSM
endpoints when there is none).

No key pair and no inbound rule: the management security group lets nothing in. The instance profile's
role has the SSM core policy, so the SSM agent can open sessions and port forwarding (to MySQL and
Redis in the private tiers). IMDSv2 is required. The AMI is the latest Amazon Linux, resolved from
AWS's public SSM parameter when the instance is created (a newer AMI later does not replace it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp import resources
from pointapp.context import StepContext
from pointapp.diffs import Differences, changed
from pointapp.errors import PointappError
from pointapp.kinds import Role, role_path, trust_policy
from pointapp.outputs import BASTION_INSTANCE, CACHE_ADDRESS, CACHE_PORT, DATABASE_ADDRESS, DATABASE_PORT
from pointapp.plan import Table
from pointapp.resources import INSTANCE_PROFILE, Arn, Desired, Found, Kind, Ref, Request, ResourceStep, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags, owner_filters, tag_specifications
from pointapp.typical import Typical

NAME = "bastion"
SSM_CORE_POLICY = Arn("iam", "policy/AmazonSSMManagedInstanceCore", "", "aws")  # an AWS managed policy


class InstanceProfile(Kind):
    name = "instance-profile"
    typical = INSTANCE_PROFILE.typical
    service = "iam"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        # Looked up by its name (the only one pointapp gives it): one call with the roles and the tags,
        # where a listing gives no tags and would need a second call per profile.
        answer = ignore_codes(ctx.client("iam").get_instance_profile, ["NoSuchEntity"],
                              InstanceProfileName=spec.name("bastion"))
        profile = answer["InstanceProfile"] if answer else None
        if profile is None or profile.get("Path") != role_path(spec):
            return []
        return self.owned(spec, step, [profile], lambda p: p["InstanceProfileName"], lambda p: from_aws_tags(p.get("Tags")))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        roles = [r["RoleName"] for r in found.raw.get("Roles", [])]
        return changed({"role": roles[0] if len(roles) == 1 else roles}, {"role": props["role"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_instance_profile": dict(InstanceProfileName=desired.name, Path=role_path(spec), Tags=aws_tags(tags)),
                "add_role_to_instance_profile": dict(InstanceProfileName=desired.name, RoleName=props["role"])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        iam = ctx.client("iam")
        request = self.request(ctx.spec, desired, props, tags)
        profile = iam.create_instance_profile(**request["create_instance_profile"])["InstanceProfile"]
        iam.add_role_to_instance_profile(**request["add_role_to_instance_profile"])
        return Found(self.name, desired.key, desired.name, dict(tags), {**profile, "Roles": [{"RoleName": props["role"]}]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        ctx.client("iam").tag_instance_profile(InstanceProfileName=found.id, Tags=aws_tags(tags))

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        iam = ctx.client("iam")
        if "role" in changes:
            for role in found.raw.get("Roles", []):
                iam.remove_role_from_instance_profile(InstanceProfileName=found.id, RoleName=role["RoleName"])
            iam.add_role_to_instance_profile(InstanceProfileName=found.id, RoleName=changes["role"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        iam = ctx.client("iam")
        for role in found.raw.get("Roles", []):
            ignore_codes(iam.remove_role_from_instance_profile, ["NoSuchEntity"], InstanceProfileName=found.id,
                         RoleName=role["RoleName"])
        ignore_codes(iam.delete_instance_profile, ["NoSuchEntity"], InstanceProfileName=found.id)
        return None

    def describe(self, found: Found) -> str:
        return "role " + ", ".join(r["RoleName"] for r in found.raw.get("Roles", []))


class Instance(Kind):
    name = "ec2-instance"
    typical = Typical("ec2-instance", 60, "the bastion from pending to running",
                      "Amazon EC2 User Guide, instance lifecycle; botocore waiter InstanceRunning: 15 s x 40")
    typical_delete = Typical("ec2-instance-terminated", 60, "the bastion from shutting-down to terminated",
                             "Amazon EC2 User Guide, instance lifecycle; botocore waiter InstanceTerminated: 15 s x 40")

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        return (INSTANCE_PROFILE.typical, *super().waits(spec))  # RunInstances waits for its new profile first
    service = "ec2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        filters = owner_filters(spec, step) + [{"Name": "instance-state-name",
                                                "Values": ["pending", "running", "stopping", "stopped"]}]
        pages = ctx.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
        return [Found(self.name, from_aws_tags(i.get("Tags"))[KEY], i["InstanceId"], from_aws_tags(i.get("Tags")), i)
                for page in pages for reservation in page["Reservations"] for i in reservation["Instances"]]

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        raw = found.raw
        if raw.get("SubnetId") != props["subnet"] and not str(props["subnet"]).startswith("<"):
            return f"in another subnet ({raw.get('SubnetId')})"
        if raw.get("KeyName"):
            return f"has the key pair {raw['KeyName']}; the bastion has none"
        if raw.get("PublicIpAddress"):
            # An address given at launch stays with the instance (Amazon EC2 User Guide, "Public IPv4
            # addresses": it is released when the instance stops or terminates); a new one is made without.
            return f"has the public IP {raw['PublicIpAddress']}; the bastion has none (SSM only, FSBP EC2.9)"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes = Differences()
        tokens = raw.get("MetadataOptions", {}).get("HttpTokens")
        if tokens != "required":
            changes.add("imdsv2", tokens, "required")
        groups = sorted(g["GroupId"] for g in raw.get("SecurityGroups", []))
        if groups != sorted(props["groups"]):
            changes.add("groups", groups, sorted(props["groups"]))
        profile = raw.get("IamInstanceProfile", {}).get("Arn", "")
        if not profile.endswith(f"/{props['profile']}"):
            changes.add("profile", profile.rsplit("/", 1)[-1], props["profile"])
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """``props["image"]`` is the AMI the SSM parameter names when the instance is made."""
        return {"run_instances": {
            "ImageId": props["image"], "InstanceType": props["instance_type"], "MinCount": 1, "MaxCount": 1,
            "SubnetId": props["subnet"], "SecurityGroupIds": list(props["groups"]),
            "IamInstanceProfile": {"Name": props["profile"]},
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "VolumeType": "gp3", "VolumeSize": 8,
                                                                      "DeleteOnTermination": True}}],
            "TagSpecifications": tag_specifications("instance", tags) + tag_specifications("volume", tags),
        }}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ec2 = ctx.client("ec2")
        image = ctx.client("ssm").get_parameter(Name=props["ami_parameter"])["Parameter"]["Value"]
        ctx.say(f"    AMI {image} from {props['ami_parameter']}")
        args = self.request(ctx.spec, desired, {**props, "image": image}, tags)["run_instances"]
        instance = resources.retry_refused(ctx, INSTANCE_PROFILE, props["profile"],
                                  lambda: ec2.run_instances(**args)["Instances"][0])
        wait_for(ctx, ec2, "instance_running", f"bastion {desired.name} ({instance['InstanceId']}) to run",
                 self.typical, real_delay=10, InstanceIds=[instance["InstanceId"]])
        return Found(self.name, desired.key, instance["InstanceId"], dict(tags), instance)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ec2", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ec2 = ctx.client("ec2")
        if "imdsv2" in changes:
            ec2.modify_instance_metadata_options(InstanceId=found.id, HttpTokens="required", HttpEndpoint="enabled")
        if "groups" in changes:
            ec2.modify_instance_attribute(InstanceId=found.id, Groups=changes["groups"])
        if "profile" in changes:
            associations = ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [found.id]}])["IamInstanceProfileAssociations"]
            if associations:
                ec2.replace_iam_instance_profile_association(AssociationId=associations[0]["AssociationId"],
                                                             IamInstanceProfile={"Name": changes["profile"]})
            else:
                ec2.associate_iam_instance_profile(InstanceId=found.id, IamInstanceProfile={"Name": changes["profile"]})

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ec2 = ctx.client("ec2")
        ignore_codes(ec2.terminate_instances, ["InvalidInstanceID.NotFound"], InstanceIds=[found.id])
        wait_for(ctx, ec2, "instance_terminated", f"bastion {found.name} ({found.id}) to terminate",
                 self.typical_delete, real_delay=10, InstanceIds=[found.id])
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        tokens = raw.get("MetadataOptions", {}).get("HttpTokens")
        return (f"{raw.get('InstanceType')} {raw.get('ImageId')} in {raw.get('SubnetId')}, "
                f"{raw.get('State', {}).get('Name')}, IMDSv2 {tokens}, key pair {raw.get('KeyName') or 'none'}")


def desired(spec: Spec) -> list[Desired]:
    bastion = spec.bastion
    role = spec.name("bastion")
    return [
        Desired("iam-role", "role", role, {"trust": trust_policy("ec2.amazonaws.com", spec=spec), "managed": [SSM_CORE_POLICY],
                                           "inline": {}}, "the SSM agent on the bastion registers with Session Manager"),
        Desired("instance-profile", "profile", spec.name("bastion"), {"role": role}, f"carries the role {role}"),
        Desired("ec2-instance", BASTION_INSTANCE.key, spec.name("bastion"), {
            "instance_type": bastion.instance_type, "ami_parameter": bastion.ami_parameter,
            "subnet": Ref("network", f"subnet/{bastion.tier}/0"), "groups": [Ref("network", f"sg/{bastion.security_group}")],
            "profile": spec.name("bastion")},
            f"{bastion.instance_type} in the {bastion.tier} subnet, SSM only: no public IP, no key pair, no inbound rule, "
            "IMDSv2 required"),
    ]


def port_forwarding(ctx: StepContext) -> Table:
    """The commands that open a local port to MySQL and Redis through the bastion (Session Manager)."""
    bastion = BASTION_INSTANCE.read(ctx)
    if not bastion:
        raise PointappError(f"no bastion in {ctx.spec.owner}: run `pointapp up --only bastion` first")
    rows = []
    for address, port_of, local in ((DATABASE_ADDRESS, DATABASE_PORT, 13306), (CACHE_ADDRESS, CACHE_PORT, 16379)):
        step = address.step
        host, port = (address.read(ctx), port_of.read(ctx)) if _available(step) else (None, None)
        if not host:
            continue
        command = (f"aws ssm start-session --region {ctx.target.region} --target {bastion} "
                   "--document-name AWS-StartPortForwardingSessionToRemoteHost "
                   f"--parameters host={host},portNumber={port},localPortNumber={local}")
        rows.append((step, f"{host}:{port}", f"127.0.0.1:{local}", command))
    return Table(["to", "remote", "local", "command"], rows, title=f"Port forwarding through {bastion}")


def _available(step: str) -> bool:
    from pointapp.steps import get

    return get(step).available


STEP = ResourceStep(NAME, [Role(), InstanceProfile(), Instance()], desired, uses=("network",))
