"""The VPC: its create request, its DNS attributes, and its deletion (kept when it holds what others own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import botocore.exceptions

from pointapp.errors import SpecError
from pointapp.plan import Change
from pointapp.resources import client_error_code
from pointapp.tags import tag_specifications

from .base import Executor, Id, Planner


def vpc_request(cidr: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateVpc request, tagged in the call."""
    return dict(CidrBlock=cidr, TagSpecifications=tag_specifications("vpc", tags))


#: The VPC attributes the network turns on (DNS resolution, then DNS host names), one ModifyVpcAttribute each.
DNS_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")


def dns_request(id: Id, attribute: str) -> dict[str, Any]:
    """The ModifyVpcAttribute request that turns ``attribute`` on (one attribute per call, as EC2 takes them)."""
    return {"VpcId": id("vpc"), attribute[0].upper() + attribute[1:]: {"Value": True}}


class VpcPlan(Planner):
    def vpc(self) -> None:
        found, lay = self.observed.vpc, self.layout
        tags = self.tags("vpc", "vpc", found)
        if found is None:
            self.add("create", "vpc", "vpc", f"{lay.vpc_cidr}, DNS hostnames and support on", "create_vpc",
                     cidr=lay.vpc_cidr, tags=tags)
            return
        if found.raw["CidrBlock"] != lay.vpc_cidr:
            raise SpecError("network.vpc_cidr", f"the VPC {found.name} ({found.id}) exists with "
                            f"{found.raw['CidrBlock']}, not {lay.vpc_cidr}; a VPC cannot change its CIDR block: "
                            "keep the old value or run `pointapp down` first")
        off = [a for a in ("enableDnsHostnames", "enableDnsSupport") if not self.observed.vpc_dns.get(a)]
        if off:
            self.add("update", "vpc", "vpc", "turn on " + ", ".join(off), "set_vpc_dns", attributes=off)


class VpcWork(Executor):
    def op_create_vpc(self, change: Change) -> None:
        vpc = self.ec2.create_vpc(**vpc_request(change.args["cidr"], change.args["tags"]))
        self.ids["vpc"] = vpc["Vpc"]["VpcId"]
        self.ec2.get_waiter("vpc_available").wait(VpcIds=[self.ids["vpc"]],
                                                  WaiterConfig={"Delay": self.ctx.wait_delay(5), "MaxAttempts": 60})
        self._dns(DNS_ATTRIBUTES)

    def op_set_vpc_dns(self, change: Change) -> None:
        self._dns(change.args["attributes"])

    def _dns(self, attributes: Iterable[str]) -> None:
        for attribute in attributes:
            self.ec2.modify_vpc_attribute(**dns_request(self.id, attribute))

    def delete_vpc(self, change: Change, vpc_id: str) -> None:
        try:
            self.ec2.delete_vpc(VpcId=vpc_id)
        except botocore.exceptions.ClientError as error:
            if client_error_code(error) != "DependencyViolation":
                raise
            vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
            left = [s["SubnetId"] for s in self.ec2.describe_subnets(Filters=vpc_filter)["Subnets"]]
            left += [g["GroupId"] for g in self.ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
                     if g["GroupName"] != "default"]
            self.warnings.append(f"kept {change.name} ({vpc_id}): it still holds resources pointapp does not own "
                                 f"({', '.join(left) or 'see the console'}); delete them, then run down again")
