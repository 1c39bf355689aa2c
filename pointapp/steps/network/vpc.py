"""The VPC: its create request, its DNS attributes, and its deletion (kept when it holds what others own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import botocore.exceptions

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.errors import SpecError
from pointapp.resources import Desired, Found, LeftStanding, Request, client_error_code, is_absent
from pointapp.spec import Spec
from pointapp.tags import tag_specifications

from .discovery import Ec2Kind, collect, listing, primary_vpc

#: The id of a layout key, for the create requests: a resource's id, or the template's Ref or Fn::GetAtt.
Id = Callable[[str], Any]


def vpc_request(cidr: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateVpc request, tagged in the call."""
    return dict(CidrBlock=cidr, TagSpecifications=tag_specifications("vpc", tags))


#: The VPC attributes the network turns on (DNS resolution, then DNS host names), one ModifyVpcAttribute each.
DNS_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")


def dns_request(id: Id, attribute: str) -> dict[str, Any]:
    """The ModifyVpcAttribute request that turns ``attribute`` on (one attribute per call, as EC2 takes them)."""
    return {"VpcId": id("vpc"), attribute[0].upper() + attribute[1:]: {"Value": True}}


class Vpc(Ec2Kind):
    """The environment's VPC, DNS support and host names on. Its CIDR block cannot change."""

    name = "vpc"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        found = collect(spec, self.name, listing(ctx, "vpcs"), "VpcId", lambda v: v["VpcId"] == vpc)
        if vpc:  # the DNS attributes, read once for the VPC in use
            answers = map_side_by_side(lambda attribute: ctx.client("ec2").describe_vpc_attribute(
                VpcId=vpc, Attribute=attribute), ("enableDnsHostnames", "enableDnsSupport"))
            for f in found:
                if f.id == vpc:
                    f.raw["Dns"] = {name: bool(answer[name[0].upper() + name[1:]]["Value"])
                                    for name, answer in zip(("enableDnsHostnames", "enableDnsSupport"), answers,
                                                            strict=True)}
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        if found.raw["CidrBlock"] != props["cidr"]:
            raise SpecError("network.vpc_cidr", f"the VPC {found.name} ({found.id}) exists with "
                            f"{found.raw['CidrBlock']}, not {props['cidr']}; a VPC cannot change its CIDR block: "
                            "keep the old value or run `pointapp down` first")
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        off = [a for a in ("enableDnsHostnames", "enableDnsSupport") if not found.raw.get("Dns", {}).get(a)]
        return {"turn on": ", ".join(off)} if off else {}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        return f"turn on {differences['turn on']}"

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_vpc": vpc_request(props["cidr"], tags),
                "modify_vpc_attribute": [dns_request(lambda _: props.get("id", "<vpc>"), a) for a in DNS_ATTRIBUTES]}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ec2 = ctx.client("ec2")
        vpc = ec2.create_vpc(**vpc_request(props["cidr"], tags))["Vpc"]
        ec2.get_waiter("vpc_available").wait(VpcIds=[vpc["VpcId"]],
                                             WaiterConfig={"Delay": ctx.wait_delay(5), "MaxAttempts": 60})
        for call in self.request(ctx.spec, desired, {**props, "id": vpc["VpcId"]}, tags)["modify_vpc_attribute"]:
            ec2.modify_vpc_attribute(**call)
        return Found(self.name, desired.key, vpc["VpcId"], dict(tags), {**vpc, "Dns": dict.fromkeys(DNS_ATTRIBUTES, True)})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        for attribute in changes["turn on"].split(", "):
            ctx.client("ec2").modify_vpc_attribute(**dns_request(lambda _: found.id, attribute))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ec2 = ctx.client("ec2")
        try:
            ec2.delete_vpc(VpcId=found.id)
        except botocore.exceptions.ClientError as error:
            if is_absent(client_error_code(error)):
                return None
            if client_error_code(error) != "DependencyViolation":
                raise
            vpc_filter = [{"Name": "vpc-id", "Values": [found.id]}]
            left = [s["SubnetId"] for s in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]]
            left += [g["GroupId"] for g in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
                     if g["GroupName"] != "default"]
            raise LeftStanding(f"kept {found.name} ({found.id}): it still holds resources pointapp does not own "
                               f"({', '.join(left) or 'see the console'}); delete them, then run down again") from None
        return None

    def describe(self, found: Found) -> str:
        return str(found.raw.get("CidrBlock", ""))
