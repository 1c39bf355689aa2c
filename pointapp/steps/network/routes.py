"""Route tables: one per table of the spec (one per zone for a NAT table in per-az mode), the default
route of each (to the internet gateway, a NAT gateway, or none), and the subnets associated with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.plan import Change
from pointapp.resources import Found, ignore_absent
from pointapp.spec import ANYWHERE_V4
from pointapp.tags import tag_specifications

from .base import Id, Planner
from .layout import RouteTableLayout
from .waits import Waits


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



class RoutePlan(Planner):
    def route_tables(self) -> None:
        associated = {a["SubnetId"]: (found, a["RouteTableAssociationId"])
                      for found in self.observed.route_tables.values()
                      for a in found.raw.get("Associations", []) if a.get("SubnetId")}
        for table in self.layout.route_tables:
            found = self.observed.route_tables.get(table.key)
            tags = self.tags("route-table", table.key, found)
            if found is None:
                self.add("create", "route-table", table.key, f"{len(table.subnets)} subnets", "create_route_table",
                         tags=tags)
            self.default_route(table, found)
            for subnet_key in table.subnets:
                subnet = None if subnet_key in self.replaced else self.observed.subnets.get(subnet_key)
                current = associated.get(subnet.id) if subnet else None
                subnet_name = self.names[subnet_key]
                if current is None:
                    self.add("create", "route-association", table.key, f"{subnet_name}", "associate",
                             subnet=subnet_key)
                elif current[0].key != table.key:
                    self.add("update", "route-association", table.key, f"{subnet_name} (from {current[0].name})",
                             "reassociate", subnet=subnet_key, association=current[1])

    def default_route(self, table: RouteTableLayout, found: Found | None) -> None:
        routes = [] if found is None else [r for r in found.raw.get("Routes", [])
                                           if r.get("DestinationCidrBlock") == ANYWHERE_V4]
        current = routes[0] if routes else None
        wanted = table.target
        target_name = self.names.get(wanted or "", "")
        if current is None:
            if wanted:
                self.add("create", "route", table.key, f"0.0.0.0/0 -> {target_name}", "create_route", target=wanted)
            return
        current_id = current.get("NatGatewayId") or current.get("GatewayId")
        ids = self.observed.ids()
        if wanted is None:
            self.add("delete", "route", table.key, f"0.0.0.0/0 -> {current_id} (no way out wanted)", "delete_route")
        elif ids.get(wanted) != current_id or wanted in self.replaced or current.get("State") == "blackhole":
            self.add("update", "route", table.key, f"0.0.0.0/0 -> {target_name} (was {current_id})",
                     "replace_route", target=wanted)


class RouteWork(Waits):
    def op_create_route_table(self, change: Change) -> None:
        table = self.ec2.create_route_table(**route_table_request(self.id, change.args["tags"]))
        self.ids[change.key] = table["RouteTable"]["RouteTableId"]

    def _route(self, change: Change) -> dict[str, Any]:
        if change.args["target"].startswith("nat/"):
            self.await_nats()
        return route_request(self.id, change.key, change.args["target"])

    def op_create_route(self, change: Change) -> None:
        self.ec2.create_route(**self._route(change))

    def op_replace_route(self, change: Change) -> None:
        self.ec2.replace_route(**self._route(change))

    def op_delete_route(self, change: Change) -> None:
        self.ec2.delete_route(RouteTableId=self.id(change.key), DestinationCidrBlock=ANYWHERE_V4)

    def op_associate(self, change: Change) -> None:
        self.ec2.associate_route_table(**association_request(self.id, change.key, change.args["subnet"]))

    def op_reassociate(self, change: Change) -> None:
        self.ec2.replace_route_table_association(AssociationId=change.args["association"],
                                                 RouteTableId=self.id(change.key))


    def delete_route_table(self, change: Change, table_id: str) -> None:
        for association in self.found(table_id).raw.get("Associations", []):
            if not association.get("Main"):
                ignore_absent(self.ec2.disassociate_route_table, AssociationId=association["RouteTableAssociationId"])
        self.ec2.delete_route_table(RouteTableId=table_id)
