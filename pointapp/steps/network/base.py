"""What the network's planner and executor share: how a change is planned and how one is carried out.

The planner is a pure function of (spec, what exists); each resource module adds its part as a mixin of
:class:`Planner` and :class:`Executor`, which :mod:`.planner` and :mod:`.executor` put together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions

from pointapp.context import StepContext
from pointapp.plan import Change
from pointapp.resources import Found, client_error_code, is_absent, step_error
from pointapp.spec import Spec
from pointapp.tags import add_tags, missing_tags, ownership_tags

from .discovery import NAME, NetworkState
from .layout import layout

#: The id of a layout key, for the create requests: the executor's ids, or the template's Ref or Fn::GetAtt.
Id = Callable[[str], Any]

#: Codes that say the change is in place already (a rerun after a lost response).
_ALREADY_DONE = {"InvalidPermission.Duplicate", "Resource.AlreadyAssociated", "RouteAlreadyExists"}


class Planner:
    """The changes that take what exists to the layout the spec asks for (built by the resource mixins)."""

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


class Executor:
    """Carries out the network's changes, one ``op_<name>`` method each (from the resource mixins)."""

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

    def _carry_out(self, change: Change) -> None:
        self.ctx.check_stopping()
        self.ctx.say(f"  {change.line()}")
        try:
            getattr(self, f"op_{change.op}")(change)
        except botocore.exceptions.ClientError as error:
            code = client_error_code(error)
            undoing = change.action == "delete" or change.op.startswith("revoke")
            if code in _ALREADY_DONE or (undoing and is_absent(code)):
                return  # done already, or gone already: a rerun converges
            raise step_error(NAME, change, error) from error
        if change.op == "delete":
            self.deleted.add(change.args["id"])
        self.ctx.done.append(change)

    def outputs(self) -> dict[str, str]:
        """The ids the layout holds after :meth:`run` (what was found, less what was deleted, plus what was made)."""
        return {key: value for key, value in self.ids.items() if not key.startswith("id:") and value not in self.deleted}

    def id(self, key: str) -> str:
        return self.ids[key]

    def found(self, resource_id: str) -> Found:
        """What discovery found with this id."""
        return next(f for f in self.observed.everything() if f.id == resource_id)

    def op_tag(self, change: Change) -> None:
        add_tags(self.ctx, "ec2", self.id(change.key), change.args["tags"])

    def op_delete(self, change: Change) -> None:
        """Delete one resource: ``delete_<kind>`` of the resource's module."""
        getattr(self, "delete_" + change.args["kind"].replace("-", "_"))(change, change.args["id"])
