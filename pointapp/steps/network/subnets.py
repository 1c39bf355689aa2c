"""Subnets: one per tier per zone; a public tier maps a public IP on launch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.plan import Change
from pointapp.tags import tag_specifications

from .base import Id, Planner
from .destroy import deletions
from .waits import Waits


def subnet_request(id: Id, cidr: str, zone: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateSubnet request, tagged in the call."""
    return dict(VpcId=id("vpc"), CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tag_specifications("subnet", tags))


def public_request(id: Id, key: str, public: bool) -> dict[str, Any]:
    """The ModifySubnetAttribute request that maps (or stops mapping) a public IP on launch."""
    return dict(SubnetId=id(key), MapPublicIpOnLaunch={"Value": public})


class SubnetPlan(Planner):
    def subnets(self) -> None:
        for subnet in self.layout.subnets:
            found = self.observed.subnets.get(subnet.key)
            tags = self.tags("subnet", subnet.key, found)
            visibility = "public" if subnet.public else "private"
            detail = f"{subnet.cidr} in {subnet.zone}, {visibility}"
            if found is not None and (found.raw["CidrBlock"], found.raw["AvailabilityZone"]) != (subnet.cidr, subnet.zone):
                self.changes += deletions([found], reason=f"replaced by {detail}")
                self.replaced.add(subnet.key)
                found = None
            if found is None:
                self.add("create", "subnet", subnet.key, detail, "create_subnet", cidr=subnet.cidr,
                         zone=subnet.zone, public=subnet.public, tags=tags)
            elif bool(found.raw.get("MapPublicIpOnLaunch")) != subnet.public:
                self.add("update", "subnet", subnet.key, f"public IP on launch {subnet.public}",
                         "set_subnet_public", public=subnet.public)



class SubnetWork(Waits):
    def op_create_subnet(self, change: Change) -> None:
        subnet = self.ec2.create_subnet(**subnet_request(self.id, change.args["cidr"], change.args["zone"], change.args["tags"]))
        self.ids[change.key] = subnet["Subnet"]["SubnetId"]
        if change.args["public"]:
            self.op_set_subnet_public(change)

    def op_set_subnet_public(self, change: Change) -> None:
        self.ec2.modify_subnet_attribute(**public_request(self.id, change.key, change.args["public"]))


    def delete_subnet(self, change: Change, subnet_id: str) -> None:
        self.await_nat_deletions()  # a NAT gateway holds an interface in its subnet until it is deleted
        self.delete_when_free(change, "subnet-id", self.ec2.delete_subnet, SubnetId=subnet_id)
