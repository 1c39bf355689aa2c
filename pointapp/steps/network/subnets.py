"""Subnets: one per tier per zone. None maps a public IP on launch (FSBP EC2.15), public tiers' neither: the
load balancer and the NAT gateway have addresses of their own, and the bastion is reached through SSM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.resources import Desired, Found, Request
from pointapp.spec import Spec
from pointapp.tags import tag_specifications

from .discovery import Ec2Kind, collect, listing, primary_vpc
from .vpc import Id
from .waits import delete_when_free


def subnet_request(id: Id, cidr: str, zone: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateSubnet request, tagged in the call."""
    return dict(VpcId=id("vpc"), CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tag_specifications("subnet", tags))


def public_request(id: Id, key: str, public: bool) -> dict[str, Any]:
    """The ModifySubnetAttribute request that maps (or stops mapping) a public IP on launch: the repair of a
    subnet that maps one (made so by an earlier pointapp, or by hand)."""
    return dict(SubnetId=id(key), MapPublicIpOnLaunch={"Value": public})


class Subnet(Ec2Kind):
    """A subnet of one tier in one zone. Another CIDR block or zone replaces it."""

    name = "subnet"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        found = collect(spec, self.name, listing(ctx, "subnets"), "SubnetId", lambda s: s["VpcId"] == vpc)
        # The owned route tables it is associated with (what a kept subnet keeps), from the tables' listing.
        tables = listing(ctx, "route-tables")
        for f in found:
            f.raw["RouteTableIds"] = [t["RouteTableId"] for t in tables
                                      if any(a.get("SubnetId") == f.id for a in t.get("Associations", []))]
        return found

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        if (found.raw["CidrBlock"], found.raw["AvailabilityZone"]) != (props["cidr"], props["zone"]):
            return f"now {desired.detail}"
        return None

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return changed({"public IP on launch": bool(found.raw.get("MapPublicIpOnLaunch"))}, {"public IP on launch": False})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        # A new subnet maps no public IP (its MapPublicIpOnLaunch is false): Amazon VPC User Guide, "Subnet
        # settings", public IPv4 addressing is off unless it is turned on.
        return {"create_subnet": subnet_request(lambda _: props["vpc"], props["cidr"], props["zone"], tags)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        subnet = ctx.client("ec2").create_subnet(**self.request(ctx.spec, desired, props, tags)["create_subnet"])["Subnet"]
        return Found(self.name, desired.key, subnet["SubnetId"], dict(tags), {**subnet, "RouteTableIds": []})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("ec2").modify_subnet_attribute(**public_request(lambda _: found.id, desired.key, False))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        delete_when_free(ctx, f"{self.name} {found.name}", "subnet-id", found.id, ctx.client("ec2").delete_subnet,
                         SubnetId=found.id)
        return None

    def stands_on(self, found: Found) -> list[str]:
        return [found.raw.get("VpcId", ""), *found.raw.get("RouteTableIds", [])]

    def describe(self, found: Found) -> str:
        raw = found.raw
        return f"{raw.get('CidrBlock')} {raw.get('AvailabilityZone')}" + (" public" if raw.get("MapPublicIpOnLaunch") else " private")
