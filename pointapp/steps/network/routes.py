"""Route tables: one per table of the spec (one per zone for a NAT table in per-az mode), the default
route of each (to the internet gateway, a NAT gateway, or none), and the subnets associated with it.

The route and the associations are parts of their table (:attr:`pointapp.resources.Desired.parent`):
found in its description, untagged, gone with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pointapp.context import StepContext
from pointapp.resources import Desired, Found, Ref, Request, ignore_absent
from pointapp.spec import ANYWHERE_V4, Spec
from pointapp.tags import tag_specifications

from .discovery import Ec2Kind, collect, listing, primary_vpc
from .vpc import Id


def route_table_request(id: Id, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateRouteTable request, tagged in the call."""
    return dict(VpcId=id("vpc"), TagSpecifications=tag_specifications("route-table", tags))


def route_request(id: Id, table: str, target: str) -> dict[str, Any]:
    """The default route of ``table`` to the internet gateway or a NAT gateway (``target``, a key)."""
    to = {"NatGatewayId": id(target)} if target.startswith("nat/") else {"GatewayId": id(target)}
    return dict(RouteTableId=id(table), DestinationCidrBlock=ANYWHERE_V4, **to)


def association_request(id: Id, table: str, subnet: str) -> dict[str, Any]:
    """The AssociateRouteTable request of ``subnet`` with ``table`` (keys)."""
    return dict(RouteTableId=id(table), SubnetId=id(subnet))


def _tables(known: Mapping[str, Found]) -> list[Found]:
    return [f for f in known.values() if f.kind == "route-table"]


def _ids(desired: Desired, props: Mapping[str, Any], table: str, other: str) -> tuple[Id, str, str]:
    """What a request builder takes: the id of a key (as ``props`` resolved it), and the keys the props
    ``table`` and ``other`` Ref."""
    keys = {prop: value.key for prop, value in desired.props.items() if isinstance(value, Ref)}
    ids = {keys[table]: props[table], keys[other]: props[other]}
    return ids.__getitem__, keys[table], keys[other]


class RouteTable(Ec2Kind):
    """A route table of the VPC. Before it is deleted, its subnets are disassociated."""

    name = "route-table"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        return collect(spec, self.name, listing(ctx, "route-tables"), "RouteTableId", lambda t: t["VpcId"] == vpc)

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_route_table": route_table_request(lambda _: props["vpc"], tags)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        table = ctx.client("ec2").create_route_table(**self.request(ctx.spec, desired, props, tags)["create_route_table"])
        return Found(self.name, desired.key, table["RouteTable"]["RouteTableId"], dict(tags), table["RouteTable"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ec2 = ctx.client("ec2")
        for association in found.raw.get("Associations", []):
            if not association.get("Main"):
                ignore_absent(ec2.disassociate_route_table, AssociationId=association["RouteTableAssociationId"])
        ignore_absent(ec2.delete_route_table, RouteTableId=found.id)
        return None

    def stands_on(self, found: Found) -> list[str]:
        return [found.raw.get("VpcId", "")] + [r.get("NatGatewayId") or r.get("GatewayId") or ""
                                                for r in found.raw.get("Routes", [])]

    def describe(self, found: Found) -> str:
        return ", ".join(f"{x.get('DestinationCidrBlock')} -> {x.get('NatGatewayId') or x.get('GatewayId')}"
                         for x in found.raw.get("Routes", []) if x.get("DestinationCidrBlock"))


class Route(Ec2Kind):
    """The default route (0.0.0.0/0) of a route table, to the internet gateway or a NAT gateway."""

    name = "route"
    tagged = False
    finds_after: ClassVar[tuple[str, ...]] = ("route-table",)
    goes_with: ClassVar[tuple[str, ...]] = ("table",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        return [Found(self.name, f"{table.key}/default", f"{table.id} {ANYWHERE_V4}", {"Name": table.name},
                      {**route, "RouteTableId": table.id}, parent=table.key)
                for table in _tables(known) for route in table.raw.get("Routes", [])
                if route.get("DestinationCidrBlock") == ANYWHERE_V4]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = found.raw.get("NatGatewayId") or found.raw.get("GatewayId")
        if current != props["target"] or found.raw.get("State") == "blackhole":
            return {"target": props["target"]}
        return {}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        return f"{desired.detail} (was {found.raw.get('NatGatewayId') or found.raw.get('GatewayId')})"

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_route": route_request(*_ids(desired, props, "table", "target"))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request, _ = self.send(ctx, desired, props, "create_route", "RouteAlreadyExists")
        return Found(self.name, desired.key, f"{props['table']} {ANYWHERE_V4}", {"Name": desired.name},
                     {**request, "State": "active"}, parent=desired.parent)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("ec2").replace_route(**self.request(ctx.spec, desired, props, {})["create_route"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_absent(ctx.client("ec2").delete_route, RouteTableId=found.raw["RouteTableId"],
                      DestinationCidrBlock=ANYWHERE_V4)
        return None


class RouteAssociation(Ec2Kind):
    """A subnet's association with its route table."""

    name = "route-association"
    tagged = False
    finds_after: ClassVar[tuple[str, ...]] = ("subnet",)
    goes_with: ClassVar[tuple[str, ...]] = ("subnet", "table")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        subnets = {f.id: f.key for f in known.values() if f.kind == "subnet"}
        # Every owned table's, strays' too: a subnet of a table that goes (a NAT table split per zone) moves.
        vpc = primary_vpc(ctx)
        tables = collect(spec, "route-table", listing(ctx, "route-tables"), "RouteTableId", lambda t: t["VpcId"] == vpc)
        return [Found(self.name, f"{subnets[a['SubnetId']]}/association", a["RouteTableAssociationId"],
                      {"Name": table.name}, dict(a), parent=table.key)
                for table in tables for a in table.raw.get("Associations", []) if a.get("SubnetId") in subnets]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return {"route table": props["table"]} if found.raw.get("RouteTableId") != props["table"] else {}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"associate_route_table": association_request(*_ids(desired, props, "table", "subnet"))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request, answer = self.send(ctx, desired, props, "associate_route_table", "Resource.AlreadyAssociated")
        return Found(self.name, desired.key, (answer or {}).get("AssociationId", ""), {"Name": desired.name},
                     {**request, "RouteTableAssociationId": (answer or {}).get("AssociationId", "")},
                     parent=desired.parent)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("ec2").replace_route_table_association(AssociationId=found.id, RouteTableId=props["table"])

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        return f"{desired.detail} (from {found.name})"

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_absent(ctx.client("ec2").disassociate_route_table, AssociationId=found.id)
        return None
