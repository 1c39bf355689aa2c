"""The ``network`` step: VPC, subnets, internet gateway, NAT gateway(s), route tables, security groups,
and the VPC's flow logs: a resource step on the core (:class:`pointapp.resources.ResourceStep`).

Its desired list is the layout (:mod:`.layout`, pure) in the zones discovery reads first (the step's
facts, :func:`.discovery.facts`); one module per resource family holds its kinds and request builders
(:mod:`.vpc`, :mod:`.subnets`, :mod:`.gateways`, :mod:`.routes`, :mod:`.groups`, :mod:`.flow_logs`, :mod:`.keys`).
What the network needs of AWS's order is the core's: the routes, associations and rules are parts of their
table or group; a NAT gateway settles later and its routes wait for it (deferred, :data:`DEFERRED_NAT`); its
delete finishes later and what it stood on waits for it; groups lose their rules before any is deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.kinds import customer_key
from pointapp.names import DEFERRED_NAT, route_table_keys
from pointapp.resources import Desired, Ref, ResourceStep, StepState
from pointapp.spec import Spec

from .discovery import NAME, available_zones, facts, zones_in_use
from .flow_logs import FLOW_LOG_KINDS, FlowLog, flow_log_group, flow_log_resources
from .gateways import ElasticIp, InternetGateway, NatGateway, address_request, attach_request, igw_request, nat_request
from .groups import (
    DefaultSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
    ip_permission,
    observed_permissions,
    rule_key,
    rule_permission,
    security_group_request,
)
from .keys import KEY_KINDS, key_resources
from .layout import (
    ALL_OUTBOUND,
    GroupLayout,
    Layout,
    NatLayout,
    Permission,
    RouteTableLayout,
    SubnetLayout,
    layout,
    zone_suffix,
)
from .routes import Route, RouteAssociation, RouteTable, association_request, route_request, route_table_request
from .subnets import Subnet, public_request, subnet_request
from .vpc import DNS_ATTRIBUTES, Vpc, dns_request, vpc_request
from .waits import NAT_GATEWAY

__all__ = [
    "ALL_OUTBOUND", "DEFERRED_NAT", "DNS_ATTRIBUTES", "NAME", "NAT_GATEWAY", "STEP", "FlowLog", "GroupLayout", "Layout",
    "NatGateway", "NatLayout", "Permission", "RouteTableLayout", "SubnetLayout", "address_request",
    "association_request", "attach_request", "available_zones", "customer_key", "default_group", "desired",
    "dns_request", "facts", "flow_log_group", "flow_log_resources", "igw_request", "key_resources", "ip_permission", "layout",
    "nat_request",
    "observed_permissions", "public_request", "rule_permission", "route_request", "route_table_keys", "route_table_request",
    "security_group_request", "security_groups", "subnet_request", "vpc_request", "zone_suffix", "zones_in_use",
]


def _ref(key: str) -> Ref:
    return Ref(NAME, key)


def _routes(lay: Layout, names: Mapping[str, str]) -> list[Desired]:
    """Each route table, its default route and its subnets' associations (parts of the table)."""
    found = []
    for table in lay.route_tables:
        found.append(Desired("route-table", table.key, table.name, {"vpc": _ref("vpc")}, f"{len(table.subnets)} subnets"))
        if table.target:
            found.append(Desired("route", f"{table.key}/default", table.name,
                                 {"table": _ref(table.key), "target": _ref(table.target)},
                                 f"0.0.0.0/0 -> {names[table.target]}", parent=table.key))
        found += [Desired("route-association", f"{subnet}/association", table.name,
                          {"table": _ref(table.key), "subnet": _ref(subnet)}, names[subnet], parent=table.key)
                  for subnet in table.subnets]
    return found


def _groups(lay: Layout) -> list[Desired]:
    """The security groups, then each group's rules (parts of the group), then the VPC's default group."""
    found = [Desired("security-group", group.key, group.name, {"vpc": _ref("vpc"), "description": group.description},
                     group.description) for group in lay.groups]
    for group in lay.groups:
        for permission, description in sorted(group.permissions.items()):
            source = {"source": _ref(permission.source)} if permission.source_kind == "group" else {}
            text = f"{permission.describe()}: {description}" if description else permission.describe()
            found.append(Desired("security-group-rule", rule_key(group.key, permission), group.name,
                                 {"group": _ref(group.key), "permission": permission, "description": description,
                                  **source}, text, parent=group.key))
    found.append(Desired("default-security-group", "default-sg", f"default group of {lay.vpc_name}",
                         {"vpc": _ref("vpc")}, "remove every inbound and outbound rule", parent="vpc"))
    return found


def desired(spec: Spec, facts: Mapping[str, Any]) -> list[Desired]:
    """What the spec asks for in the region and zones of ``facts``, in creation order. Pure."""
    lay = layout(spec, facts["region"], facts["zones"])
    names = lay.names()
    found = [Desired("vpc", "vpc", lay.vpc_name, {"cidr": lay.vpc_cidr}, f"{lay.vpc_cidr}, DNS hostnames and support on"),
             Desired("internet-gateway", "igw", lay.igw_name, {"vpc": _ref("vpc")}, "attached to the VPC")]
    found += [Desired("subnet", s.key, s.name, {"vpc": _ref("vpc"), "cidr": s.cidr, "zone": s.zone, "public": s.public},
                      f"{s.cidr} in {s.zone}, {'public' if s.public else 'private'}") for s in lay.subnets]
    for nat in lay.nats:
        found += [Desired("elastic-ip", nat.address, nat.address_name, {}, f"for {nat.name}"),
                  Desired("nat-gateway", nat.key, nat.name, {"subnet": _ref(nat.subnet), "address": _ref(nat.address)},
                          f"in {names[nat.subnet]} with {nat.address_name}")]
    # the key first: the flow log group is encrypted with it
    return key_resources(spec, facts["region"]) + found + _routes(lay, names) + _groups(lay) + flow_log_resources(spec)


STEP = ResourceStep(NAME, [*KEY_KINDS, Vpc(), Subnet(), InternetGateway(), ElasticIp(), NatGateway(), RouteTable(), Route(),
                           RouteAssociation(), SecurityGroup(), SecurityGroupRule(), DefaultSecurityGroup(),
                           *FLOW_LOG_KINDS], desired, facts=facts)
"""The kinds in the order deletes go backwards: the flow logs first, then the groups, the route tables,
the NAT gateways and their Elastic IPs, the internet gateway, the subnets, the VPC, and the key last (what
the steps before made with it is gone by then)."""


def security_groups(state: StepState) -> list[Any]:
    """The owned security groups found (what the audit examines)."""
    return [f for f in state.found.values() if f.kind == "security-group"]


def default_group(state: StepState) -> dict[str, Any] | None:
    """The description of the VPC's default security group, when the VPC exists."""
    found = state.found.get("default-sg")
    return found.raw if found is not None else None

