"""The network's plan: a pure function from (spec, what exists) to the changes, resource by resource."""

from __future__ import annotations

from pointapp.plan import Change
from pointapp.spec import Spec

from .destroy import deletions
from .discovery import NetworkState
from .gateways import GatewayPlan
from .groups import GroupPlan
from .layout import layout
from .routes import RoutePlan
from .subnets import SubnetPlan
from .vpc import VpcPlan


class _Planner(VpcPlan, GatewayPlan, SubnetPlan, RoutePlan, GroupPlan):
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


def plan(spec: Spec, observed: NetworkState) -> list[Change]:
    """The changes that take what exists to what the spec asks for; pure (no AWS call)."""
    return _Planner(spec, observed).run()


def resource_count(spec: Spec, observed: NetworkState) -> int:
    return len(layout(spec, observed.region, observed.zones).keys())
