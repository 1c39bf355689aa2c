"""Deletion: in the order AWS allows (dependents first), keeping what a kept resource stands on. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from pointapp.plan import Change, Kept, keep
from pointapp.resources import Found
from pointapp.spec import Spec

from .discovery import DELETE_ORDER, NAME, NetworkState
from .groups import group_references


def deletions(found: Iterable[Found], reason: str = "") -> list[Change]:
    """Delete changes for owned resources, in the order AWS allows (dependents first).

    EC2 refuses to delete a security group another group's rule references (DependencyViolation,
    DeleteSecurityGroup in the EC2 API reference): every group to delete first loses its inbound rules and
    the outbound rules that name a group, so no reference among them is left when the first one goes.
    """
    items = sorted(found, key=lambda f: (DELETE_ORDER.index(f.kind), f.key, f.id))
    changes = [Change(NAME, "update", "security-group", f.key, f.name, "revoke its rules before deletion",
                      "revoke_all", {"id": f.id}) for f in items
               if f.kind == "security-group" and (f.raw.get("IpPermissions") or group_references(f.raw))]
    suffix = f" ({reason})" if reason else ""
    changes += [Change(NAME, "delete", f.kind, f.key, f.name, f"{f.id}{suffix}", "delete", {"id": f.id, "kind": f.kind})
                for f in items]
    return changes



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
        needs += group_references(raw)
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
