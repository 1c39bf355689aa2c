"""What the network step owns, as it exists: one tag-filtered describe per resource type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.resources import Found
from pointapp.spec import Spec
from pointapp.tags import KEY, from_aws_tags, is_owned, owner_filters

NAME = "network"

#: The kinds of the layout in the order they are deleted (dependents first); created the other way round.
DELETE_ORDER = ["security-group", "route-table", "nat-gateway", "elastic-ip", "internet-gateway", "subnet", "vpc"]


@dataclass
class NetworkState:
    """What discovery found of the layout: by key, plus duplicates and what an earlier run left deleting."""

    region: str
    zones: list[str]
    vpc: Found | None = None
    vpc_dns: dict[str, bool] = field(default_factory=dict)
    igw: Found | None = None
    subnets: dict[str, Found] = field(default_factory=dict)
    addresses: dict[str, Found] = field(default_factory=dict)
    nat_gateways: dict[str, Found] = field(default_factory=dict)
    route_tables: dict[str, Found] = field(default_factory=dict)
    groups: dict[str, Found] = field(default_factory=dict)
    default_group: dict[str, Any] | None = None
    duplicates: list[Found] = field(default_factory=list)
    nats_deleting: list[Found] = field(default_factory=list)  # deleted by an earlier run, not gone yet
    gone_nat_interfaces: set[str] = field(default_factory=set)  # of owned NAT gateways that are deleted

    def everything(self) -> list[Found]:
        """Every owned resource found, duplicates included, in creation order (VPC first)."""
        single = [f for f in (self.vpc, self.igw) if f is not None]
        maps = (self.subnets, self.addresses, self.nat_gateways, self.route_tables, self.groups)
        found = single + [f for mapping in maps for f in mapping.values()] + self.duplicates
        return sorted(found, key=lambda f: (len(DELETE_ORDER) - DELETE_ORDER.index(f.kind), f.name, f.id))

    def ids(self) -> dict[str, str]:
        ids = {f.key: f.id for f in self.everything() if f not in self.duplicates}
        ids.update({f"id:{f.id}": f.id for f in self.duplicates})
        return ids

    def key_of_group(self) -> dict[str, str]:
        return {f.id: f.key for f in self.groups.values()}



def paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a describe call, all pages read (one call where the operation has no paginator)."""
    if client.can_paginate(operation):
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
        return items
    return list(getattr(client, operation)(**kwargs).get(result_key, []))


def _collect(spec: Spec, kind: str, items: Iterable[dict[str, Any]], id_field: str,
             in_vpc: Callable[[dict[str, Any]], bool] = lambda _: True) -> tuple[dict[str, Found], list[Found]]:
    """Index owned items by key; the second of a key, or one outside the chosen VPC, is a duplicate."""
    by_key: dict[str, Found] = {}
    duplicates: list[Found] = []
    for item in sorted(items, key=lambda i: (not in_vpc(i), i[id_field])):
        tags = from_aws_tags(item.get("Tags"))
        if not is_owned(tags, spec, NAME):
            continue
        found = Found(kind, tags[KEY], item[id_field], tags, item)
        if found.key in by_key or not in_vpc(item):
            duplicates.append(found)
        else:
            by_key[found.key] = found
    return by_key, duplicates


def available_zones(ctx: StepContext) -> list[str]:
    """The region's availability zones, in the order the step uses them (the first ``network.zones``)."""
    zones = ctx.client("ec2").describe_availability_zones(Filters=[
        {"Name": "zone-type", "Values": ["availability-zone"]}, {"Name": "state", "Values": ["available"]}])
    return sorted(z["ZoneName"] for z in zones["AvailabilityZones"])


def zones_in_use(spec: Spec, subnets: Iterable[Found]) -> list[str] | None:
    """The zones the built subnets sit in, by zone index (``subnet/<tier>/<i>``), when they cover exactly
    the ``network.zones`` the spec asks for; None otherwise (nothing built yet, or the count changed)."""
    by_index: dict[int, set[str]] = {}
    for found in subnets:
        index = found.key.rsplit("/", 1)[-1]
        if index.isdigit():
            by_index.setdefault(int(index), set()).add(found.raw["AvailabilityZone"])
    if sorted(by_index) != list(range(spec.network.zones)) or any(len(z) != 1 for z in by_index.values()):
        return None  # not all zones built, or a zone index split over two zones
    zones = [by_index[i].pop() for i in range(spec.network.zones)]
    return zones if len(set(zones)) == len(zones) else None


def discover(ctx: StepContext) -> NetworkState:
    """Read what the step owns: one tag-filtered call per resource type, plus the VPC's attributes.

    A built network keeps the zones its subnets are in (the region's zone list is read only before the
    first subnet exists, or when ``network.zones`` changes), so a zone that AWS marks impaired for a
    while never makes a plan move subnets.
    """
    spec: Spec = ctx.spec
    ec2 = ctx.client("ec2")
    filters = owner_filters(spec, NAME)
    # The tag-filtered listings need nothing from each other: read side by side.
    listings = {"describe_vpcs": ("Vpcs", "Filters"), "describe_subnets": ("Subnets", "Filters"),
                "describe_internet_gateways": ("InternetGateways", "Filters"),
                "describe_nat_gateways": ("NatGateways", "Filter"), "describe_addresses": ("Addresses", "Filters"),
                "describe_route_tables": ("RouteTables", "Filters")}
    vpcs_raw, subnets_raw, igws_raw, every_nat, addresses, tables_raw = map_side_by_side(
        lambda op: paginate(ec2, op, listings[op][0], **{listings[op][1]: filters}), listings)
    # The VPC holding most of the owned subnets is the environment's; any other owned VPC is a duplicate.
    holding = {v["VpcId"]: sum(s["VpcId"] == v["VpcId"] for s in subnets_raw) for v in vpcs_raw}
    owned = [v for v in vpcs_raw if is_owned(from_aws_tags(v.get("Tags")), spec, NAME)]
    primary = max(owned, key=lambda v: (holding[v["VpcId"]], v["VpcId"]))["VpcId"] if owned else None
    state = NetworkState(ctx.target.region, [])
    vpcs, state.duplicates = _collect(spec, "vpc", vpcs_raw, "VpcId", lambda v: v["VpcId"] == primary)
    state.vpc = vpcs.get("vpc")
    vpc_id = state.vpc.id if state.vpc else None

    def in_vpc(item: dict[str, Any]) -> bool:
        return item.get("VpcId") == vpc_id

    def igw_in_vpc(item: dict[str, Any]) -> bool:
        return not item.get("Attachments") or any(a["VpcId"] == vpc_id for a in item["Attachments"])

    igws, dup = _collect(spec, "internet-gateway", igws_raw, "InternetGatewayId", igw_in_vpc)
    state.igw = igws.get("igw")
    state.duplicates += dup
    state.subnets, dup = _collect(spec, "subnet", subnets_raw, "SubnetId", in_vpc)
    state.duplicates += dup
    state.zones = zones_in_use(spec, state.subnets.values()) or available_zones(ctx)
    nats = [n for n in every_nat if n["State"] not in ("deleting", "deleted")]
    state.nat_gateways, dup = _collect(spec, "nat-gateway", nats, "NatGatewayId", in_vpc)
    state.duplicates += dup
    # A NAT gateway still deleting holds its Elastic IP and its public address in the VPC: waited for on down.
    going, also_going = _collect(spec, "nat-gateway", [n for n in every_nat if n["State"] == "deleting"], "NatGatewayId")
    state.nats_deleting = list(going.values()) + also_going
    state.gone_nat_interfaces = {address["NetworkInterfaceId"] for nat in every_nat if nat["State"] == "deleted"
                                 for address in nat.get("NatGatewayAddresses", []) if address.get("NetworkInterfaceId")}
    state.addresses, dup = _collect(spec, "elastic-ip", addresses, "AllocationId")
    state.duplicates += dup
    state.route_tables, dup = _collect(spec, "route-table", tables_raw, "RouteTableId", in_vpc)
    state.duplicates += dup
    # Security groups live in a VPC: one call over the owned VPCs gives the owned groups (tagged) and the
    # default group, which the step keeps empty.
    # With the VPC's attributes, side by side.
    attributes = ("enableDnsHostnames", "enableDnsSupport") if vpc_id else ()
    read: list[Callable[[], Any]] = [
        lambda: paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=[
            {"Name": "vpc-id", "Values": sorted(v["VpcId"] for v in vpcs_raw)}]) if vpcs_raw else [],
        *[lambda attribute=attribute: ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
          for attribute in attributes]]
    groups_raw, *answers = map_side_by_side(lambda call: call(), read)
    state.groups, dup = _collect(spec, "security-group", groups_raw, "GroupId", in_vpc)
    state.duplicates += dup
    if vpc_id:
        for attribute, answer in zip(attributes, answers, strict=True):
            state.vpc_dns[attribute] = bool(answer[attribute[0].upper() + attribute[1:]]["Value"])
        state.default_group = next((g for g in groups_raw if g["VpcId"] == vpc_id and g["GroupName"] == "default"), None)
    return state


