"""The network's executor: carries the changes out in order, and defers the routes to a NAT gateway
that is not available yet, so that the steps that do not need it start meanwhile."""

from __future__ import annotations

from collections.abc import Sequence

from pointapp.names import DEFERRED_NAT
from pointapp.plan import Change

from .discovery import NAME
from .gateways import GatewayWork
from .groups import GroupWork
from .routes import RouteWork
from .subnets import SubnetWork
from .vpc import VpcWork


class _Executor(VpcWork, GatewayWork, SubnetWork, RouteWork, GroupWork):
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
            self.ctx.say(f"  NAT gateway {names} is starting (usually {self.nat_typical.spoken} on AWS); its routes follow once it "
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
