"""The ``network`` step: VPC, subnets, internet gateway, NAT gateway(s), route tables, security groups.

``discover`` reads what the step owns in a handful of tag-filtered calls; ``plan`` is a pure function
from (spec, observed) to changes; ``apply`` carries them out and converges from any partial state;
``plan_destroy`` lists everything the step owns, in the order it must be deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.errors import SpecError, StepError
from pointapp.kinds import LogGroup, Role, policy, trust_policy
from pointapp.names import DEFERRED_NAT
from pointapp.plan import Change, Kept, Table, keep
from pointapp.resources import (
    FLOW_LOGS_ROLE,
    Arn,
    Desired,
    Found,
    Kind,
    Ref,
    Request,
    ResourceStep,
    StepState,
    ignore_codes,
    retry_new_role,
)
from pointapp.spec import ANYWHERE_V4, Spec
from pointapp.tags import KEY, as_aws_tags, from_aws_tags, is_owned, missing_tags, owner_filters, ownership_tags, tag_specifications

NAME = "network"

# --- the desired layout: pure data derived from the spec --------------------------------------------


@dataclass(frozen=True)
class SubnetLayout:
    key: str
    name: str
    tier: str
    zone: str
    cidr: str
    public: bool


@dataclass(frozen=True)
class NatLayout:
    key: str
    name: str
    subnet: str
    address: str
    address_name: str


@dataclass(frozen=True)
class RouteTableLayout:
    key: str
    name: str
    target: str | None  # key of the internet gateway or a NAT gateway for 0.0.0.0/0; None: no way out
    subnets: tuple[str, ...]


@dataclass(frozen=True, order=True)
class Permission:
    """One security-group permission with one source. Group sources are keys (``sg/db``) or ids."""

    direction: str
    protocol: str
    from_port: int | None
    to_port: int | None
    source_kind: str  # cidr, cidr6, group, prefix
    source: str

    def describe(self) -> str:
        port = "all traffic" if self.protocol == "-1" else f"{self.from_port}/{self.protocol}"
        if self.from_port != self.to_port:
            port = f"{self.from_port}-{self.to_port}/{self.protocol}"
        source = self.source.split("/", 1)[1] if self.source.startswith("sg/") else self.source
        arrow = "from" if self.direction == "ingress" else "to"
        return f"{self.direction} {port} {arrow} {source}"


ALL_OUTBOUND = Permission("egress", "-1", None, None, "cidr", ANYWHERE_V4)


@dataclass(frozen=True)
class GroupLayout:
    key: str
    name: str
    description: str
    permissions: Mapping[Permission, str]  # permission -> rule description


@dataclass(frozen=True)
class Layout:
    region: str
    zones: tuple[str, ...]
    vpc_name: str
    vpc_cidr: str
    igw_name: str
    subnets: tuple[SubnetLayout, ...]
    nats: tuple[NatLayout, ...]
    route_tables: tuple[RouteTableLayout, ...]
    groups: tuple[GroupLayout, ...]

    def keys(self) -> set[str]:
        keys = {"vpc", "igw"}
        keys |= {s.key for s in self.subnets} | {n.key for n in self.nats} | {n.address for n in self.nats}
        keys |= {t.key for t in self.route_tables} | {g.key for g in self.groups}
        return keys

    def names(self) -> dict[str, str]:
        names = {"vpc": self.vpc_name, "igw": self.igw_name}
        names.update({s.key: s.name for s in self.subnets})
        names.update({n.key: n.name for n in self.nats})
        names.update({n.address: n.address_name for n in self.nats})
        names.update({t.key: t.name for t in self.route_tables})
        names.update({g.key: g.name for g in self.groups})
        return names


def zone_suffix(region: str, zone: str) -> str:
    """``ap-northeast-1a`` in ``ap-northeast-1`` gives ``1a``, the end of every per-zone name."""
    if zone.startswith(region):
        return region.rsplit("-", 1)[-1] + zone[len(region):]
    return zone


def layout(spec: Spec, region: str, available_zones: Sequence[str]) -> Layout:
    """What the spec asks for in ``region``, given the zones the region offers (in order)."""
    network = spec.network
    if network.zones > len(available_zones):
        raise SpecError("network.zones", f"{network.zones} zones asked but region {region} offers "
                        f"{len(available_zones)} ({', '.join(available_zones) or 'none'})")
    zones = tuple(available_zones[: network.zones])
    suffix = [zone_suffix(region, zone) for zone in zones]
    subnets = tuple(
        SubnetLayout(f"subnet/{tier_name}/{i}",
                     spec.name("subnet", "public" if tier.public else "private", tier_name, suffix[i]),
                     tier_name, zones[i], cidr, tier.public)
        for tier_name, tier in network.tiers.items() for i, cidr in enumerate(tier.cidrs))
    nat_zones = {"none": [], "single": [0], "per-az": list(range(len(zones)))}[network.nat]
    nats = tuple(NatLayout(f"nat/{i}", spec.name("nat", suffix[i]), f"subnet/{network.nat_tier}/{i}",
                           f"eip/{i}", spec.name("eip", "nat", suffix[i])) for i in nat_zones)
    route_tables: list[RouteTableLayout] = []
    for table_name, table in network.route_tables.items():
        members = [s for s in subnets if network.tiers[s.tier].route_table == table_name]
        if table.default_route == "nat_gateway" and network.nat == "per-az":
            for i in range(len(zones)):
                route_tables.append(RouteTableLayout(
                    f"rtb/{table_name}/{i}", spec.name("rtb", table_name, suffix[i]), f"nat/{i}",
                    tuple(s.key for s in members if s.zone == zones[i])))
            continue
        target = {"internet_gateway": "igw", "nat_gateway": "nat/0" if nats else None, "none": None}
        route_tables.append(RouteTableLayout(f"rtb/{table_name}", spec.name("rtb", table_name),
                                             target[table.default_route], tuple(s.key for s in members)))
    groups = tuple(GroupLayout(f"sg/{name}", spec.name("sg", name), group.description,
                               _group_permissions(spec, name))
                   for name, group in network.security_groups.items())
    return Layout(region, zones, spec.name("vpc"), network.vpc_cidr, spec.name("igw"), subnets, nats,
                  tuple(route_tables), groups)


def _group_permissions(spec: Spec, group: str) -> dict[Permission, str]:
    permissions = {ALL_OUTBOUND: ""}
    for rule in spec.inbound_rules(group):
        port = int(rule.port)
        sources = [("cidr6" if ":" in cidr else "cidr", cidr) for cidr in rule.cidrs]
        sources += [("group", f"sg/{name}") for name in rule.groups]
        for kind, source in sources:
            permissions[Permission("ingress", rule.protocol, port, port, kind, source)] = rule.description
    return permissions


# --- what exists -------------------------------------------------------------------------------------


@dataclass
class NetworkState:
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
        return sorted(found, key=lambda f: (len(_DELETE_ORDER) - _DELETE_ORDER.index(f.kind), f.name, f.id))

    def ids(self) -> dict[str, str]:
        ids = {f.key: f.id for f in self.everything() if f not in self.duplicates}
        ids.update({f"id:{f.id}": f.id for f in self.duplicates})
        return ids

    def key_of_group(self) -> dict[str, str]:
        return {f.id: f.key for f in self.groups.values()}


def _paginate(client: Any, operation: str, result_key: str, **kwargs: Any) -> list[dict[str, Any]]:
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
        lambda op: _paginate(ec2, op, listings[op][0], **{listings[op][1]: filters}), listings)
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
        lambda: _paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=[
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


def observed_permissions(raw: Mapping[str, Any], key_of_group: Mapping[str, str]) -> dict[Permission, str]:
    """The permissions of a described security group, one source each, with their descriptions."""
    permissions: dict[Permission, str] = {}
    for direction, field_name in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
        for perm in raw.get(field_name, []):
            protocol = str(perm["IpProtocol"])
            ports = (None, None) if protocol == "-1" else (perm.get("FromPort"), perm.get("ToPort"))
            sources = [("cidr", r["CidrIp"], r) for r in perm.get("IpRanges", [])]
            sources += [("cidr6", r["CidrIpv6"], r) for r in perm.get("Ipv6Ranges", [])]
            sources += [("group", key_of_group.get(r["GroupId"], r["GroupId"]), r)
                        for r in perm.get("UserIdGroupPairs", [])]
            sources += [("prefix", r["PrefixListId"], r) for r in perm.get("PrefixListIds", [])]
            for kind, source, entry in sources:
                permission = Permission(direction, protocol, ports[0], ports[1], kind, source)
                permissions[permission] = entry.get("Description", "") or ""
    return permissions


# --- plan: pure ----------------------------------------------------------------------------------


class _Planner:
    def __init__(self, spec: Spec, observed: NetworkState) -> None:
        self.spec = spec
        self.observed = observed
        self.layout = layout(spec, observed.region, observed.zones)
        self.names = self.layout.names()
        self.replaced: set[str] = set()
        self.changes: list[Change] = []

    def add(self, action: str, kind: str, key: str, detail: str, op: str, **args: Any) -> None:
        name = self.names.get(key) or args.get("name") or key
        self.changes.append(Change(NAME, action, kind, key, name, detail, op, args))  # type: ignore[arg-type]

    def tags(self, kind: str, key: str, found: Found | None) -> dict[str, str]:
        wanted = ownership_tags(self.spec, NAME, key, self.names[key])
        if found is not None:
            missing = missing_tags(found.tags, wanted)
            if missing:
                self.add("update", kind, key, "tags: " + ", ".join(f"{k}={v}" for k, v in missing.items()),
                         "tag", tags=missing)
        return wanted

    def run(self) -> list[Change]:
        self.vpc()
        self.internet_gateway()
        self.subnets()
        self.nat_gateways()
        self.route_tables()
        self.security_groups()
        self.default_group()
        wanted = self.layout.keys()
        strays = [f for f in self.observed.everything()
                  if f in self.observed.duplicates or f.key not in wanted]
        self.changes += deletions(strays, reason="not in the spec")
        return self.changes

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

    def internet_gateway(self) -> None:
        found = self.observed.igw
        tags = self.tags("internet-gateway", "igw", found)
        if found is None:
            self.add("create", "internet-gateway", "igw", "attached to the VPC", "create_igw", tags=tags)
        elif not any(a.get("VpcId") == getattr(self.observed.vpc, "id", None)
                     for a in found.raw.get("Attachments", [])):
            self.add("update", "internet-gateway", "igw", "attach to the VPC", "attach_igw")

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

    def nat_gateways(self) -> None:
        for nat in self.layout.nats:
            address = self.observed.addresses.get(nat.address)
            tags = self.tags("elastic-ip", nat.address, address)
            if address is None:
                self.add("create", "elastic-ip", nat.address, f"for {nat.name}", "allocate_address", tags=tags)
            found = self.observed.nat_gateways.get(nat.key)
            tags = self.tags("nat-gateway", nat.key, found)
            if found is not None and found.raw["State"] == "failed":
                self.changes += deletions([found], reason="failed; replaced")
                self.replaced.add(nat.key)
                found = None
            subnet = self.names[nat.subnet]
            if found is None:
                self.add("create", "nat-gateway", nat.key, f"in {subnet} with {nat.address_name}",
                         "create_nat", subnet=nat.subnet, address=nat.address, tags=tags)

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

    def security_groups(self) -> None:
        for group in self.layout.groups:
            found = self.observed.groups.get(group.key)
            tags = self.tags("security-group", group.key, found)
            if found is None:
                self.add("create", "security-group", group.key, group.description, "create_security_group",
                         description=group.description, tags=tags)
        key_of_group = self.observed.key_of_group()
        for group in self.layout.groups:
            found = self.observed.groups.get(group.key)
            current = observed_permissions(found.raw, key_of_group) if found else {ALL_OUTBOUND: ""}
            for permission, description in sorted(group.permissions.items()):
                text = f"{permission.describe()}: {description}" if description else permission.describe()
                if permission not in current:
                    self.add("create", "security-group-rule", group.key, text, "authorize",
                             permission=permission, description=description)
                elif description and current[permission] != description:
                    self.add("update", "security-group-rule", group.key, f"description: {description}",
                             "describe_rule", permission=permission, description=description)
            for permission in sorted(set(current) - set(group.permissions)):
                self.add("delete", "security-group-rule", group.key, f"{permission.describe()} (not in the spec)",
                         "revoke", permission=permission)

    def default_group(self) -> None:
        raw = self.observed.default_group
        rules = len(raw.get("IpPermissions", [])) + len(raw.get("IpPermissionsEgress", [])) if raw else 0
        if (raw is None and self.observed.vpc is None) or rules:
            self.add("update", "default-security-group", "default-sg", "remove every inbound and outbound rule",
                     "strip_default_group", name=f"default group of {self.layout.vpc_name}")


_DELETE_ORDER = ["security-group", "route-table", "nat-gateway", "elastic-ip", "internet-gateway", "subnet", "vpc"]


def _group_references(raw: Mapping[str, Any]) -> list[str]:
    """The ids of the groups a described security group's rules (inbound and outbound) name as a source."""
    return [pair["GroupId"] for field_name in ("IpPermissions", "IpPermissionsEgress")
            for perm in raw.get(field_name, []) for pair in perm.get("UserIdGroupPairs", [])]


def deletions(found: Iterable[Found], reason: str = "") -> list[Change]:
    """Delete changes for owned resources, in the order AWS allows (dependents first).

    EC2 refuses to delete a security group another group's rule references (DependencyViolation,
    DeleteSecurityGroup in the EC2 API reference): every group to delete first loses its inbound rules and
    the outbound rules that name a group, so no reference among them is left when the first one goes.
    """
    items = sorted(found, key=lambda f: (_DELETE_ORDER.index(f.kind), f.key, f.id))
    changes = [Change(NAME, "update", "security-group", f.key, f.name, "revoke its rules before deletion",
                      "revoke_all", {"id": f.id}) for f in items
               if f.kind == "security-group" and (f.raw.get("IpPermissions") or _group_references(f.raw))]
    suffix = f" ({reason})" if reason else ""
    changes += [Change(NAME, "delete", f.kind, f.key, f.name, f"{f.id}{suffix}", "delete", {"id": f.id, "kind": f.kind})
                for f in items]
    return changes


def plan(spec: Spec, observed: NetworkState) -> list[Change]:
    """The changes that take what exists to what the spec asks for; pure (no AWS call)."""
    return _Planner(spec, observed).run()


def _stands_on(found: Found, observed: NetworkState) -> list[str]:
    """The keys of what a resource of the layout needs while it is kept (pure, from the descriptions).

    A subnet: the VPC and its route table. A route table: the VPC and the target of its way out. A NAT
    gateway: its subnet and its Elastic IP. A security group: the VPC and every group its rules name.
    """
    key_of = {f.id: f.key for f in observed.everything() if f not in observed.duplicates}
    raw, needs = found.raw, ["vpc"]
    if found.kind == "subnet":
        needs += [t.key for t in observed.route_tables.values()
                  if any(a.get("SubnetId") == found.id for a in t.raw.get("Associations", []))]
    elif found.kind == "route-table":
        needs += [r.get("NatGatewayId") or r.get("GatewayId") or "" for r in raw.get("Routes", [])]
    elif found.kind == "nat-gateway":
        needs += [raw.get("SubnetId", "")] + [a.get("AllocationId", "") for a in raw.get("NatGatewayAddresses", [])]
    elif found.kind == "security-group":
        needs += _group_references(raw)
    elif found.kind in ("vpc", "elastic-ip"):
        needs = []
    return [key_of.get(need, need) for need in needs if key_of.get(need, need) in key_of.values() and need != found.id]


def plan_destroy(spec: Spec, observed: NetworkState, kept: Kept | None = None) -> list[Change]:
    """Everything the step owns, in deletion order; but what ``kept`` names (by key, from the steps that run
    after this one: the subnets and security group of a kept database) is kept, and so is, transitively,
    what it stands on (its route table, the groups its rules name, the VPC). A kept group thus never names
    a group that is deleted, and nothing that is kept is changed. Pure."""
    by_key = {f.key: f for f in observed.everything() if f not in observed.duplicates}
    keeping = {key: why for (step, key), why in (kept or {}).items() if step == NAME and key in by_key}
    pending = list(keeping)
    while pending:
        found = by_key[pending.pop()]
        for key in _stands_on(found, observed):
            if key not in keeping:
                keeping[key] = f"{found.kind} {found.name} (kept) stands on it"
                pending.append(key)
    changes = deletions([f for f in observed.everything() if f.key not in keeping or f in observed.duplicates])
    return changes + [keep(NAME, f.kind, f.key, f.name, f.id, keeping[f.key])
                      for f in observed.everything() if f.key in keeping and f not in observed.duplicates]


def resource_count(spec: Spec, observed: NetworkState) -> int:
    return len(layout(spec, observed.region, observed.zones).keys())


# --- apply ---------------------------------------------------------------------------------------


_ALREADY_DONE = {"InvalidPermission.Duplicate", "Resource.AlreadyAssociated", "RouteAlreadyExists"}


# --- the create requests: one per call, for the executor and the CloudFormation export -----------------
# ``id`` gives the id of a layout key: the executor's ids, or the template's Ref or Fn::GetAtt.

Id = Callable[[str], Any]


def vpc_request(cidr: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(CidrBlock=cidr, TagSpecifications=tag_specifications("vpc", tags))


#: The VPC attributes the network turns on (DNS resolution, then DNS host names), one ModifyVpcAttribute each.
DNS_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")


def dns_request(id: Id, attribute: str) -> dict[str, Any]:
    return {"VpcId": id("vpc"), attribute[0].upper() + attribute[1:]: {"Value": True}}


def igw_request(tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(TagSpecifications=tag_specifications("internet-gateway", tags))


def attach_request(id: Id) -> dict[str, Any]:
    return dict(InternetGatewayId=id("igw"), VpcId=id("vpc"))


def subnet_request(id: Id, cidr: str, zone: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(VpcId=id("vpc"), CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tag_specifications("subnet", tags))


def public_request(id: Id, key: str, public: bool) -> dict[str, Any]:
    return dict(SubnetId=id(key), MapPublicIpOnLaunch={"Value": public})


def address_request(tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(Domain="vpc", TagSpecifications=tag_specifications("elastic-ip", tags))


def nat_request(id: Id, subnet: str, address: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(SubnetId=id(subnet), AllocationId=id(address), ConnectivityType="public",
                TagSpecifications=tag_specifications("natgateway", tags))


def route_table_request(id: Id, tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(VpcId=id("vpc"), TagSpecifications=tag_specifications("route-table", tags))


def route_request(id: Id, table: str, target: str) -> dict[str, Any]:
    """The default route of ``table`` to the internet gateway or a NAT gateway (``target``, a key)."""
    to = {"NatGatewayId": id(target)} if target.startswith("nat/") else {"GatewayId": id(target)}
    return dict(RouteTableId=id(table), DestinationCidrBlock=ANYWHERE_V4, **to)


def association_request(id: Id, table: str, subnet: str) -> dict[str, Any]:
    return dict(RouteTableId=id(table), SubnetId=id(subnet))


def security_group_request(id: Id, name: str, description: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return dict(GroupName=name, Description=description, VpcId=id("vpc"),
                TagSpecifications=tag_specifications("security-group", tags))


def ip_permission(id: Id, permission: Permission, description: str = "") -> dict[str, Any]:
    """One permission as IpPermissions holds it; a group source is a key (``id`` gives its id) or an id."""
    entry: dict[str, Any] = {"IpProtocol": permission.protocol}
    if permission.protocol != "-1":
        entry.update(FromPort=permission.from_port, ToPort=permission.to_port)
    described = {"Description": description} if description else {}
    if permission.source_kind == "cidr":
        entry["IpRanges"] = [{"CidrIp": permission.source, **described}]
    elif permission.source_kind == "cidr6":
        entry["Ipv6Ranges"] = [{"CidrIpv6": permission.source, **described}]
    elif permission.source_kind == "group":
        entry["UserIdGroupPairs"] = [{"GroupId": id(permission.source), **described}]
    else:
        entry["PrefixListIds"] = [{"PrefixListId": permission.source, **described}]
    return entry


class _Executor:
    def __init__(self, ctx: StepContext, observed: NetworkState) -> None:
        self.ctx = ctx
        self.ec2 = ctx.client("ec2")
        self.observed = observed
        self.ids = observed.ids()
        # A NAT gateway found still pending (made by a run that stopped early) is waited for like a new one.
        self.nats_pending: list[tuple[str, str]] = [(f.name, f.id) for f in observed.nat_gateways.values()
                                                    if f.raw.get("State") == "pending"]
        # A NAT gateway an earlier down left deleting still holds its Elastic IP: waited for like one deleted now.
        self.nats_deleting: list[tuple[str, str]] = [(f.name, f.id) for f in observed.nats_deleting]
        self.warnings: list[str] = []
        self.deleted: set[str] = set()
        self.gone_interfaces = set(observed.gone_nat_interfaces)  # those of NAT gateways that are deleted

    def run(self, changes: Sequence[Change], defer: bool = False) -> list[str]:
        """Carry out ``changes`` in order. With ``defer``, a route to a NAT gateway that is not available yet
        is left to :meth:`finish_nat_routes`, which the context runs when a later step needs the NAT
        gateway (the service) or at the end of ``up``: the steps that do not need it start meanwhile."""
        waiting: list[Change] = []
        for change in changes:
            if defer and self._needs_pending_nat(change):
                waiting.append(change)
                continue
            self._carry_out(change)
        if defer and self.nats_pending:
            names = ", ".join(name for name, _ in self.nats_pending)
            self.ctx.say(f"  NAT gateway {names} is starting (usually 1 to 3 minutes on AWS); its routes follow once it "
                         "is available, before the service starts, while the steps that do not need it go on")
            self.ctx.defer(DEFERRED_NAT, lambda: self.finish_nat_routes(waiting))
        else:
            self.finish_nat_routes(waiting)
        self.await_nat_deletions()
        return self.warnings

    def _needs_pending_nat(self, change: Change) -> bool:
        target = change.args.get("target") or ""
        return change.op in ("create_route", "replace_route") and target.startswith("nat/") and bool(self.nats_pending)

    def finish_nat_routes(self, routes: Sequence[Change]) -> None:
        """Wait for the pending NAT gateways, then add the routes that lead to them (reported as the network
        step's work, whichever step's thread runs it)."""
        with self.ctx.at_work(NAME):
            self.await_nats()
            for change in routes:
                self._carry_out(change)

    def _carry_out(self, change: Change) -> None:
        self.ctx.check_stopping()
        self.ctx.say(f"  {change.line()}")
        try:
            getattr(self, f"op_{change.op}")(change)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            undoing = change.action == "delete" or change.op.startswith("revoke")
            if code in _ALREADY_DONE or (undoing and code.endswith(".NotFound")):
                return
            message = error.response.get("Error", {}).get("Message", str(error))
            raise StepError(NAME, f"{change.kind} {change.name}", message, code) from error
        if change.op == "delete":
            self.deleted.add(change.args["id"])
        self.ctx.done.append(change)

    def outputs(self) -> dict[str, str]:
        """The ids the layout holds after :meth:`run` (what was found, less what was deleted, plus what was made)."""
        return {key: value for key, value in self.ids.items() if not key.startswith("id:") and value not in self.deleted}

    def id(self, key: str) -> str:
        return self.ids[key]

    # creation

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

    def op_tag(self, change: Change) -> None:
        self.ec2.create_tags(Resources=[self.id(change.key)],
                             Tags=[{"Key": k, "Value": v} for k, v in change.args["tags"].items()])

    def op_create_igw(self, change: Change) -> None:
        igw = self.ec2.create_internet_gateway(**igw_request(change.args["tags"]))
        self.ids["igw"] = igw["InternetGateway"]["InternetGatewayId"]
        self.op_attach_igw(change)

    def op_attach_igw(self, change: Change) -> None:
        self.ec2.attach_internet_gateway(**attach_request(self.id))

    def op_create_subnet(self, change: Change) -> None:
        subnet = self.ec2.create_subnet(**subnet_request(self.id, change.args["cidr"], change.args["zone"], change.args["tags"]))
        self.ids[change.key] = subnet["Subnet"]["SubnetId"]
        if change.args["public"]:
            self.op_set_subnet_public(change)

    def op_set_subnet_public(self, change: Change) -> None:
        self.ec2.modify_subnet_attribute(**public_request(self.id, change.key, change.args["public"]))

    def op_allocate_address(self, change: Change) -> None:
        address = self.ec2.allocate_address(**address_request(change.args["tags"]))
        self.ids[change.key] = address["AllocationId"]

    def op_create_nat(self, change: Change) -> None:
        nat = self.ec2.create_nat_gateway(**nat_request(self.id, change.args["subnet"], change.args["address"],
                                                        change.args["tags"]))
        self.ids[change.key] = nat["NatGateway"]["NatGatewayId"]
        self.nats_pending.append((change.name, self.ids[change.key]))

    def await_nats(self) -> None:
        """Wait for NAT gateways created in this run (started together, waited for together)."""
        if not self.nats_pending:
            return
        self._wait("nat_gateway_available", self.nats_pending, "available", real_delay=15)
        self.nats_pending = []

    def await_nat_deletions(self) -> None:
        if not self.nats_deleting:
            return
        self._wait("nat_gateway_deleted", self.nats_deleting, "deleted", real_delay=15)
        ids = {nat_id for _, nat_id in self.nats_deleting}
        self.gone_interfaces |= {address["NetworkInterfaceId"]
                                 for f in [*self.observed.nat_gateways.values(), *self.observed.nats_deleting]
                                 if f.id in ids for address in f.raw.get("NatGatewayAddresses", [])
                                 if address.get("NetworkInterfaceId")}
        self.nats_deleting = []

    def _wait(self, waiter: str, nats: list[tuple[str, str]], state: str, real_delay: int) -> None:
        names = ", ".join(f"{name} ({nat_id})" for name, nat_id in nats)
        self.ctx.say(f"  waiting for NAT gateway {names} to be {state} (usually 1 to 3 minutes on AWS) ...")
        started = time.monotonic()
        try:
            self.ec2.get_waiter(waiter).wait(NatGatewayIds=[nat_id for _, nat_id in nats],
                                             WaiterConfig={"Delay": self.ctx.wait_delay(real_delay), "MaxAttempts": 60})
        except botocore.exceptions.WaiterError as error:
            raise StepError(NAME, f"NAT gateway {names}", f"did not become {state}: {error.last_response.get('Error', error)}") from None
        self.ctx.say(f"  NAT gateway {names} {state} after {time.monotonic() - started:.0f}s")

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

    def op_create_security_group(self, change: Change) -> None:
        group = self.ec2.create_security_group(
            **security_group_request(self.id, change.name, change.args["description"], change.args["tags"]))
        self.ids[change.key] = group["GroupId"]

    def _ip_permission(self, permission: Permission, description: str = "") -> dict[str, Any]:
        return ip_permission(lambda key: self.ids.get(key, key), permission, description)

    def _rules_call(self, verb: str, change: Change, description: str = "") -> None:
        permission: Permission = change.args["permission"]
        operation = f"{verb}_security_group_{permission.direction}"
        getattr(self.ec2, operation)(GroupId=self.id(change.key),
                                     IpPermissions=[self._ip_permission(permission, description)])

    def op_authorize(self, change: Change) -> None:
        self._rules_call("authorize", change, change.args["description"])

    def op_revoke(self, change: Change) -> None:
        self._rules_call("revoke", change)

    def op_describe_rule(self, change: Change) -> None:
        permission: Permission = change.args["permission"]
        operation = f"update_security_group_rule_descriptions_{permission.direction}"
        getattr(self.ec2, operation)(GroupId=self.id(change.key),
                                     IpPermissions=[self._ip_permission(permission, change.args["description"])])

    def op_strip_default_group(self, change: Change) -> None:
        raw = self.observed.default_group
        if raw is None:  # the VPC was created in this run
            answer = self.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [self.id("vpc")]},
                                                                {"Name": "group-name", "Values": ["default"]}])
            raw = answer["SecurityGroups"][0]
        for field_name, verb in (("IpPermissions", "ingress"), ("IpPermissionsEgress", "egress")):
            if raw.get(field_name):
                getattr(self.ec2, f"revoke_security_group_{verb}")(GroupId=raw["GroupId"],
                                                                   IpPermissions=_clean(raw[field_name]))

    # deletion

    def op_revoke_all(self, change: Change) -> None:
        """Revoke every inbound rule of a group, and the outbound rules that name a group, by rule id (as they
        are now: a rule that names two groups is two rules, each revoked on its own)."""
        group_id = change.args["id"]
        # DescribeSecurityGroupRules gives each rule's id, IsEgress and ReferencedGroupInfo; the revoke calls
        # take SecurityGroupRuleId.N (EC2 API reference), so no rule is missed for a detail of how it is written.
        rules = _paginate(self.ec2, "describe_security_group_rules", "SecurityGroupRules",
                          Filters=[{"Name": "group-id", "Values": [group_id]}])
        inbound = [r["SecurityGroupRuleId"] for r in rules if not r.get("IsEgress")]
        naming = [r["SecurityGroupRuleId"] for r in rules if r.get("IsEgress") and r.get("ReferencedGroupInfo")]
        if inbound:
            self.ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=inbound)
        if naming:
            self.ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=naming)

    def op_delete(self, change: Change) -> None:
        kind, resource_id = change.args["kind"], change.args["id"]
        if kind == "security-group":
            self._delete_when_free(change, "group-id", self.ec2.delete_security_group, GroupId=resource_id)
        elif kind == "route-table":
            raw = next(f.raw for f in self.observed.everything() if f.id == resource_id)
            for association in raw.get("Associations", []):
                if not association.get("Main"):
                    self._ignore_not_found(self.ec2.disassociate_route_table,
                                           AssociationId=association["RouteTableAssociationId"])
            self.ec2.delete_route_table(RouteTableId=resource_id)
        elif kind == "nat-gateway":
            self.ec2.delete_nat_gateway(NatGatewayId=resource_id)
            self.nats_deleting.append((change.name, resource_id))
        elif kind == "elastic-ip":
            self.await_nat_deletions()
            self.ec2.release_address(AllocationId=resource_id)
        elif kind == "internet-gateway":
            raw = next(f.raw for f in self.observed.everything() if f.id == resource_id)
            if raw.get("Attachments"):
                # EC2 refuses to detach an internet gateway while the VPC has public addresses mapped
                # (DependencyViolation, DetachInternetGateway in the EC2 API reference): a NAT gateway's
                # until it is deleted, a deleted load balancer's until its network interfaces are gone.
                self.await_nat_deletions()
                self._await_interfaces(change, [{"Name": "vpc-id", "Values": [a["VpcId"] for a in raw["Attachments"]]}],
                                       "public addresses", lambda eni: bool(eni.get("Association", {}).get("PublicIp")))
            for attachment in raw.get("Attachments", []):
                self._ignore_not_found(self.ec2.detach_internet_gateway, InternetGatewayId=resource_id,
                                       VpcId=attachment["VpcId"])
            self.ec2.delete_internet_gateway(InternetGatewayId=resource_id)
        elif kind == "subnet":
            self.await_nat_deletions()
            self._delete_when_free(change, "subnet-id", self.ec2.delete_subnet, SubnetId=resource_id)
        elif kind == "vpc":
            self._delete_vpc(change, resource_id)

    # Interface endpoints, load balancers, NAT gateways, databases and tasks hold network interfaces in
    # subnets and security groups, and AWS removes them some minutes after the resource is deleted
    # (hashicorp/terraform-provider-aws#40: "its network interfaces can take a while to go away (some
    # minutes)"); EC2 refuses to delete a subnet or a group that still has one (DependencyViolation). So the
    # step waits for them (polls of 15 s, 80 at most: 20 minutes, terraform-provider-aws's own bound for a
    # subnet's deletion), and retries a deletion refused meanwhile, within the same bound.
    _FREE_POLLS = 80

    def _deadline(self) -> float:
        return self.ctx.clock() + self._FREE_POLLS * self.ctx.wait_delay(15)

    def _delete_when_free(self, change: Change, filter_name: str, delete: Callable[..., Any], **kwargs: Any) -> None:
        """Delete a subnet or a security group once no network interface is left in it (bounded)."""
        started, deadline = self.ctx.clock(), self._deadline()
        while True:
            self._await_interfaces(change, [{"Name": filter_name, "Values": [change.args["id"]]}], deadline=deadline)
            try:
                delete(**kwargs)
                return
            except botocore.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") != "DependencyViolation" or self.ctx.clock() >= deadline:
                    raise
                refused = error.response.get("Error", {}).get("Message", "")
            self.ctx.say(f"    {change.kind} {change.name} still in use ({refused}); trying again "
                         f"(for up to {deadline - started:.0f}s in all)")
            self._pause()

    def _await_interfaces(self, change: Change, filters: list[dict[str, Any]], what: str = "",
                          holds: Callable[[dict[str, Any]], bool] = lambda _: True, deadline: float | None = None) -> None:
        """Wait, saying for what, until no network interface matching ``filters`` (and ``holds``) is left."""
        started, deadline = self.ctx.clock(), deadline or self._deadline()
        told = ""
        while True:
            left = [eni for eni in _paginate(self.ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)
                    if holds(eni)]
            left = self._without_stale(left)
            if not left:
                if told:
                    self.ctx.say(f"    {change.kind} {change.name}: free after {self.ctx.clock() - started:.0f}s")
                return
            holders = self._holders(left)
            if self.ctx.clock() >= deadline:
                raise StepError(NAME, f"{change.kind} {change.name}", f"still holds {holders} after "
                                f"{self.ctx.clock() - started:.0f}s; delete them, then run down again", "DependencyViolation")
            if holders != told:
                told = holders
                of = f" ({what})" if what else ""
                self.ctx.say(f"    waiting for {holders}{of} to go from {change.kind} {change.name} "
                             "(usually a few minutes on AWS) ...")
            self._pause()

    def _without_stale(self, interfaces: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Less the interfaces that go with their owner: a NAT gateway that is deleted, an instance that is
        terminated (AWS deletes them with it; the emulator keeps them). Should one still be there, the
        deletion is refused and tried again, within the same bound."""
        if not interfaces:
            return interfaces
        instances = sorted({eni.get("Attachment", {}).get("InstanceId") for eni in interfaces} - {None})
        answer = ignore_codes(self.ec2.describe_instances, ["InvalidInstanceID.NotFound"], InstanceIds=instances) \
            if instances else None
        terminated = {i["InstanceId"] for r in (answer or {}).get("Reservations", []) for i in r["Instances"]
                      if i["State"]["Name"] == "terminated"}
        return [eni for eni in interfaces if eni["NetworkInterfaceId"] not in self.gone_interfaces
                and eni.get("Attachment", {}).get("InstanceId") not in terminated]

    def _pause(self) -> None:
        self.ctx.check_stopping()
        self.ctx.sleep(self.ctx.wait_delay(15))

    def _holders(self, interfaces: Sequence[Mapping[str, Any]]) -> str:
        """``2 network interfaces of vpc-endpoint point-app-prod-vpce-ecr-api``: grouped by what they belong to,
        named after what this run deleted where the description says (an endpoint's, a load balancer's)."""
        names: dict[str, str] = {f.id: f"{f.kind} {f.name}" for f in self.observed.everything() + self.observed.nats_deleting}
        for done in self.ctx.done:
            found = done.args.get("found")
            if done.action == "delete" and found is not None:
                names[found.id] = f"{done.kind} {done.name}"
                if ":loadbalancer/" in found.id:  # its interfaces say "ELB app/<name>/<id>"
                    names[found.id.split(":loadbalancer/", 1)[1]] = names[found.id]
        counts: dict[str, int] = {}
        for eni in interfaces:
            owner = _interface_owner(eni)
            label = names.get(owner, owner)
            counts[label] = counts.get(label, 0) + 1
        return ", ".join(f"{n} network interface{'s' if n > 1 else ''} of {label}" for label, n in sorted(counts.items()))

    def _delete_vpc(self, change: Change, vpc_id: str) -> None:
        try:
            self.ec2.delete_vpc(VpcId=vpc_id)
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "DependencyViolation":
                raise
            vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
            left = [s["SubnetId"] for s in self.ec2.describe_subnets(Filters=vpc_filter)["Subnets"]]
            left += [g["GroupId"] for g in self.ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
                     if g["GroupName"] != "default"]
            self.warnings.append(f"kept {change.name} ({vpc_id}): it still holds resources pointapp does not own "
                                 f"({', '.join(left) or 'see the console'}); delete them, then run down again")

    def _ignore_not_found(self, call: Callable[..., Any], **kwargs: Any) -> None:
        try:
            call(**kwargs)
        except botocore.exceptions.ClientError as error:
            if not error.response.get("Error", {}).get("Code", "").endswith(("NotFound", ".NotAttached", "Gateway.NotAttached")):
                raise


# How AWS describes the network interfaces it makes for a service (the Description of each, as EC2 shows
# it: "VPC Endpoint Interface vpce-...", "ELB app/<name>/<id>", "Interface for NAT Gateway nat-...").
_INTERFACE_PREFIXES = ("VPC Endpoint Interface ", "Interface for NAT Gateway ", "ELB ")


def _interface_owner(eni: Mapping[str, Any]) -> str:
    """The id of what a network interface belongs to, from its description; else the description or its id."""
    description = str(eni.get("Description") or "")
    for prefix in _INTERFACE_PREFIXES:
        if description.startswith(prefix):
            return description[len(prefix):].strip()
    return description or f"{eni.get('InterfaceType', 'interface')} {eni.get('NetworkInterfaceId')}"


def _clean(permissions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Permissions as described, trimmed to what revoke accepts."""
    cleaned = []
    for perm in permissions:
        entry = {k: v for k, v in perm.items() if k in ("IpProtocol", "FromPort", "ToPort", "IpRanges",
                                                       "Ipv6Ranges", "PrefixListIds")}
        if perm.get("UserIdGroupPairs"):
            entry["UserIdGroupPairs"] = [{"GroupId": pair["GroupId"]} for pair in perm["UserIdGroupPairs"]]
        cleaned.append({k: v for k, v in entry.items() if v not in ([], None)})
    return cleaned


def outputs(observed: NetworkState) -> dict[str, str]:
    """The ids other steps refer to, by key: ``vpc``, ``subnet/<tier>/<zone>``, ``sg/<group>``, ``rtb/<table>``."""
    return {key: value for key, value in observed.ids().items() if not key.startswith("id:")}


def inventory(observed: NetworkState) -> Table:
    """What the step owns, as a table: one row per resource."""
    rows = []
    names_of_groups = {f.id: f"sg/{f.name}" for f in observed.groups.values()}
    for found in observed.everything():
        raw = found.raw
        describe: dict[str, Callable[[dict[str, Any]], Any]] = {
            "vpc": lambda r: r.get("CidrBlock", ""),
            "subnet": lambda r: f"{r.get('CidrBlock')} {r.get('AvailabilityZone')}"
                                + (" public" if r.get("MapPublicIpOnLaunch") else " private"),
            "nat-gateway": lambda r: f"{r.get('State')} in {r.get('SubnetId')}",
            "elastic-ip": lambda r: r.get("PublicIp", ""),
            "route-table": lambda r: ", ".join(
                f"{x.get('DestinationCidrBlock')} -> {x.get('NatGatewayId') or x.get('GatewayId')}"
                for x in r.get("Routes", []) if x.get("DestinationCidrBlock")),
            "security-group": lambda r: "; ".join(
                p.describe() for p in sorted(observed_permissions(r, names_of_groups)) if p.direction == "ingress")
            or "no inbound rule",
            "internet-gateway": lambda r: ", ".join(a["VpcId"] for a in r.get("Attachments", [])),
        }
        rows.append((found.kind, found.name, found.id, describe[found.kind](raw)))
    return Table(["resource", "name", "id", "detail"], rows, title=f"network: {len(rows)} resources")


# --- VPC flow logs: IAM role, log group and flow log, as a resource step inside this one --------------


class FlowLog(Kind):
    """A VPC flow log delivered to CloudWatch Logs. Flow logs cannot change in place: they are replaced."""

    name = "flow-log"
    service = "ec2"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        ec2 = ctx.client("ec2")
        logs = _paginate(ec2, "describe_flow_logs", "FlowLogs", Filters=owner_filters(spec, step))
        return self.owned(spec, step, logs, lambda f: f["FlowLogId"], lambda f: from_aws_tags(f.get("Tags")))

    @staticmethod
    def _settings(props: Mapping[str, Any]) -> dict[str, Any]:
        return {"ResourceId": props["vpc"], "TrafficType": props["traffic"], "LogGroupName": props["log_group"],
                "DeliverLogsPermissionArn": props["role"]}

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        wanted = self._settings(props)
        if any(value.startswith("<") for value in wanted.values()):
            return None  # the VPC or the role is still to be made: compared once both exist
        differ = [name for name, value in wanted.items() if found.raw.get(name) != value]
        return ", ".join(f"{name} changes" for name in differ) or None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        settings = self._settings(props)
        return {"create_flow_logs": dict(
            ResourceIds=[settings["ResourceId"]], ResourceType="VPC", TrafficType=settings["TrafficType"],
            LogDestinationType="cloud-watch-logs", LogGroupName=settings["LogGroupName"],
            DeliverLogsPermissionArn=settings["DeliverLogsPermissionArn"],
            TagSpecifications=tag_specifications("vpc-flow-log", tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        settings = self._settings(props)
        request = self.request(ctx.spec, desired, props, tags)["create_flow_logs"]
        answer = retry_new_role(ctx, FLOW_LOGS_ROLE, settings["DeliverLogsPermissionArn"],
                                lambda: ctx.client("ec2").create_flow_logs(**request))
        if answer.get("Unsuccessful") or not answer.get("FlowLogIds"):
            problem = (answer.get("Unsuccessful") or [{}])[0].get("Error", {})
            raise StepError(NAME, f"flow log {desired.name}", problem.get("Message", "was not created"), problem.get("Code"))
        return Found(self.name, desired.key, answer["FlowLogIds"][0], dict(tags), settings)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "tags" in changes:
            ctx.client("ec2").create_tags(Resources=[found.id], Tags=as_aws_tags(changes["tags"]))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("ec2").delete_flow_logs, ["InvalidFlowLogId.NotFound"], FlowLogIds=[found.id])
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('TrafficType')} traffic of {found.raw.get('ResourceId')} to {found.raw.get('LogGroupName')}"


def flow_log_group(spec: Spec) -> str:
    return f"{LogGroup.prefix(spec)}vpc-flow-logs"


def _flow_log_resources(spec: Spec) -> list[Desired]:
    if not spec.network.flow_logs:
        return []
    group = flow_log_group(spec)
    days = spec.network.flow_logs_retention_days
    deliver = {"Effect": "Allow", "Resource": Arn("logs", f"log-group:{group}:*"),
               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]}
    return [
        Desired("log-group", "flow-logs/log-group", group, {"retention_days": days}, f"retention {days} days"),
        Desired("iam-role", "flow-logs/role", spec.name("vpc-flow-logs"),
                {"trust": trust_policy("vpc-flow-logs.amazonaws.com"), "managed": [], "inline": {"deliver": policy(deliver)}},
                "the VPC flow log service writes to its own log group only"),
        Desired("flow-log", "flow-logs/vpc", spec.name("vpc-flow-log"),
                {"vpc": Ref("runtime", "vpc"), "traffic": "ALL", "log_group": group,
                 "role": Ref(NAME, "flow-logs/role", "Arn")}, f"all traffic of the VPC to {group}"),
    ]


FLOW_LOGS = ResourceStep(NAME, [LogGroup(), Role(), FlowLog()], _flow_log_resources)


# --- the step: the EC2 layout above, then the flow logs ----------------------------------------------


@dataclass
class Observed:
    """What the step owns: the EC2 layout and the flow-log resources."""

    layout: NetworkState
    flow_logs: StepState
    applied: dict[str, str] | None = None  # the layout's ids after an apply (what was found, made and deleted)

    @property
    def zones(self) -> list[str]:
        return self.layout.zones

    def _vpc_ref(self, vpc_id: str | None) -> None:
        self.flow_logs.refs.pop(("runtime", "vpc"), None)
        if vpc_id:
            self.flow_logs.refs[("runtime", "vpc")] = vpc_id


def discover_all(ctx: StepContext) -> Observed:
    observed = Observed(discover(ctx), FLOW_LOGS.discover(ctx))
    observed._vpc_ref(observed.layout.vpc.id if observed.layout.vpc else None)
    return observed


def _is_flow_log_change(change: Change) -> bool:
    return change.kind in FLOW_LOGS.kinds


def plan_all(spec: Spec, observed: Observed) -> list[Change]:
    return plan(spec, observed.layout) + FLOW_LOGS.plan(spec, observed.flow_logs)


def plan_destroy_all(spec: Spec, observed: Observed, kept: Kept | None = None) -> list[Change]:
    return FLOW_LOGS.plan_destroy(spec, observed.flow_logs, kept) + plan_destroy(spec, observed.layout, kept)


def apply_all(ctx: StepContext, changes: Sequence[Change], observed: Observed) -> list[str]:
    """Flow-log deletions first (they hang off the VPC), then the layout, then the flow logs it needs."""
    changes = [c for c in changes if c.action != "keep"]  # kept on purpose: nothing to do
    flow = [c for c in changes if _is_flow_log_change(c)]
    first = [c for c in flow if c.action == "delete"]
    last = [c for c in flow if c.action != "delete"]
    executor = _Executor(ctx, observed.layout)
    warnings = FLOW_LOGS.apply(ctx, first, observed.flow_logs) if first else []
    warnings += executor.run([c for c in changes if not _is_flow_log_change(c)], defer=True)
    if last:
        observed._vpc_ref(executor.ids.get("vpc"))
        warnings += FLOW_LOGS.apply(ctx, last, observed.flow_logs)
    observed.applied = executor.outputs()  # the ids as they are now: what the engine records as the outputs
    return warnings


def resource_count_all(spec: Spec, observed: Observed) -> int:
    return resource_count(spec, observed.layout) + FLOW_LOGS.resource_count(spec, observed.flow_logs)


def outputs_all(observed: Observed) -> dict[str, str]:
    layout = outputs(observed.layout) if observed.applied is None else observed.applied
    return {**layout, **FLOW_LOGS.outputs(observed.flow_logs)}


def inventory_all(observed: Observed) -> Table:
    layout_rows = inventory(observed.layout).rows
    rows = list(layout_rows) + list(FLOW_LOGS.inventory(observed.flow_logs).rows)
    return Table(["resource", "name", "id", "detail"], rows, title=f"network: {len(rows)} resources")


class _NetworkStep:
    discover = staticmethod(discover_all)
    plan = staticmethod(plan_all)
    plan_destroy = staticmethod(plan_destroy_all)
    apply = staticmethod(apply_all)
    resource_count = staticmethod(resource_count_all)
    inventory = staticmethod(inventory_all)
    outputs = staticmethod(outputs_all)


STEP = _NetworkStep()
