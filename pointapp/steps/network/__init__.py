"""The ``network`` step: VPC, subnets, internet gateway, NAT gateway(s), route tables, security groups,
and the VPC's flow logs.

``discover`` reads what the step owns in a handful of tag-filtered calls; ``plan`` is a pure function
from (spec, observed) to changes; ``apply`` carries them out and converges from any partial state;
``plan_destroy`` lists everything the step owns, in the order it must be deleted.

The EC2 topology has its own planner and executor (:mod:`.planner`, :mod:`.executor`, one module per
resource: :mod:`.vpc`, :mod:`.subnets`, :mod:`.gateways`, :mod:`.routes`, :mod:`.groups`), for the order
AWS needs (:mod:`.waits`); the flow logs are a resource step on the core (:mod:`.flow_logs`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pointapp.context import StepContext
from pointapp.names import DEFERRED_NAT, route_table_keys
from pointapp.plan import Change, Kept, Table
from pointapp.resources import StepState

from .destroy import deletions, plan_destroy
from .discovery import NAME, NetworkState, available_zones, discover, zones_in_use
from .executor import _Executor
from .flow_logs import FLOW_LOGS, FlowLog, _flow_log_resources, flow_log_group
from .gateways import address_request, attach_request, igw_request, nat_request
from .groups import ip_permission, observed_permissions, security_group_request
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
from .planner import plan, resource_count
from .routes import association_request, route_request, route_table_request
from .subnets import public_request, subnet_request
from .vpc import DNS_ATTRIBUTES, dns_request, vpc_request
from .waits import NAT_GATEWAY

__all__ = [
    "ALL_OUTBOUND", "DEFERRED_NAT", "DNS_ATTRIBUTES", "FLOW_LOGS", "NAME", "NAT_GATEWAY", "STEP", "FlowLog", "GroupLayout", "Layout",
    "NatLayout", "NetworkState", "NetworkStep", "Observed", "Permission", "RouteTableLayout", "SubnetLayout",
    "address_request", "association_request", "attach_request", "available_zones", "deletions", "discover",
    "dns_request", "flow_log_group", "igw_request", "inventory", "ip_permission", "layout", "nat_request",
    "observed_permissions", "outputs", "plan", "plan_destroy", "public_request", "resource_count",
    "route_request", "route_table_keys", "route_table_request", "security_group_request", "subnet_request",
    "vpc_request", "zone_suffix", "zones_in_use", "_Executor", "_flow_log_resources",
]


def outputs(observed: NetworkState) -> dict[str, str]:
    """The ids other steps refer to, by key: ``vpc``, ``subnet/<tier>/<zone>``, ``sg/<group>``, ``rtb/<table>``."""
    return {key: value for key, value in observed.ids().items() if not key.startswith("id:")}


def _describers(names_of_groups: Mapping[str, str]) -> dict[str, Callable[[dict[str, Any]], str]]:
    """How the inventory describes each kind, from its description."""

    def routes(raw: dict[str, Any]) -> str:
        return ", ".join(f"{x.get('DestinationCidrBlock')} -> {x.get('NatGatewayId') or x.get('GatewayId')}"
                         for x in raw.get("Routes", []) if x.get("DestinationCidrBlock"))

    def inbound(raw: dict[str, Any]) -> str:
        return "; ".join(p.describe() for p in sorted(observed_permissions(raw, names_of_groups))
                         if p.direction == "ingress") or "no inbound rule"

    return {
        "vpc": lambda r: str(r.get("CidrBlock", "")),
        "subnet": lambda r: f"{r.get('CidrBlock')} {r.get('AvailabilityZone')}"
                            + (" public" if r.get("MapPublicIpOnLaunch") else " private"),
        "nat-gateway": lambda r: f"{r.get('State')} in {r.get('SubnetId')}",
        "elastic-ip": lambda r: str(r.get("PublicIp", "")),
        "route-table": routes,
        "security-group": inbound,
        "internet-gateway": lambda r: ", ".join(a["VpcId"] for a in r.get("Attachments", [])),
    }


def inventory(observed: NetworkState) -> Table:
    """What the step owns, as a table: one row per resource."""
    describe = _describers({f.id: f"sg/{f.name}" for f in observed.groups.values()})
    rows = [(found.kind, found.name, found.id, describe[found.kind](found.raw)) for found in observed.everything()]
    return Table(["resource", "name", "id", "detail"], rows, title=f"network: {len(rows)} resources")


@dataclass
class Observed:
    """What the step owns: the EC2 topology and the flow-log resources."""

    topology: NetworkState
    flow_logs: StepState
    applied: dict[str, str] | None = None  # the topology's ids after an apply (what was found, made and deleted)

    @property
    def zones(self) -> list[str]:
        return self.topology.zones

    def _vpc_ref(self, vpc_id: str | None) -> None:
        self.flow_logs.refs.pop(("runtime", "vpc"), None)
        if vpc_id:
            self.flow_logs.refs[("runtime", "vpc")] = vpc_id


def _is_flow_log_change(change: Change) -> bool:
    return change.kind in FLOW_LOGS.kinds


class NetworkStep:
    """The step protocol over the topology and the flow logs: the flow logs hang off the VPC, so they are
    deleted before the topology and made after it."""

    name = NAME

    def discover(self, ctx: StepContext) -> Observed:
        observed = Observed(discover(ctx), FLOW_LOGS.discover(ctx))
        observed._vpc_ref(observed.topology.vpc.id if observed.topology.vpc else None)
        return observed

    def plan(self, spec: Any, observed: Observed) -> list[Change]:
        return plan(spec, observed.topology) + FLOW_LOGS.plan(spec, observed.flow_logs)

    def plan_destroy(self, spec: Any, observed: Observed, kept: Kept | None = None) -> list[Change]:
        return FLOW_LOGS.plan_destroy(spec, observed.flow_logs, kept) + plan_destroy(spec, observed.topology, kept)

    def apply(self, ctx: StepContext, changes: Sequence[Change], observed: Observed) -> list[str]:
        """Flow-log deletions first (they hang off the VPC), then the topology, then the flow logs it needs."""
        changes = [c for c in changes if c.action != "keep"]  # kept on purpose: nothing to do
        flow = [c for c in changes if _is_flow_log_change(c)]
        first = [c for c in flow if c.action == "delete"]
        last = [c for c in flow if c.action != "delete"]
        executor = _Executor(ctx, observed.topology)
        warnings = FLOW_LOGS.apply(ctx, first, observed.flow_logs) if first else []
        warnings += executor.run([c for c in changes if not _is_flow_log_change(c)], defer=True)
        if last:
            observed._vpc_ref(executor.ids.get("vpc"))
            warnings += FLOW_LOGS.apply(ctx, last, observed.flow_logs)
        observed.applied = executor.outputs()  # the ids as they are now: what the engine records as the outputs
        return warnings

    def resource_count(self, spec: Any, observed: Observed) -> int:
        return resource_count(spec, observed.topology) + FLOW_LOGS.resource_count(spec, observed.flow_logs)

    def outputs(self, observed: Observed) -> dict[str, str]:
        topology = outputs(observed.topology) if observed.applied is None else observed.applied
        return {**topology, **FLOW_LOGS.outputs(observed.flow_logs)}

    def inventory(self, observed: Observed) -> Table:
        rows = list(inventory(observed.topology).rows) + list(FLOW_LOGS.inventory(observed.flow_logs).rows)
        return Table(["resource", "name", "id", "detail"], rows, title=f"network: {len(rows)} resources")


STEP = NetworkStep()
