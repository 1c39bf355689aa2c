"""The layout the spec asks for: subnets, NAT gateways, route tables and security groups as pure data.

Nothing here talks to AWS: the step's desired list is made of it, the CloudFormation export and the
diagram read it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pointapp.errors import SpecError
from pointapp.spec import ANYWHERE_V4, Spec


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

