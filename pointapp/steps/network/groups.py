"""Security groups: the groups, their rules (one permission with one source each, parts of their group),
and the VPC's default group, which the step keeps empty. Before groups are deleted, their rules that name
a group are revoked by rule id (:attr:`SecurityGroup.clears`), so no group is refused for another's
reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from pointapp.context import StepContext
from pointapp.diffs import Differences, changed
from pointapp.plan import Change
from pointapp.resources import Desired, Found, Request, ignore_absent, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import tag_specifications

from .discovery import Ec2Kind, collect, listing, paginate, primary_vpc, read_once
from .layout import ALL_OUTBOUND, Permission
from .vpc import Id
from .waits import delete_when_free


def security_group_request(id: Id, name: str, description: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The CreateSecurityGroup request, tagged in the call."""
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


def observed_permissions(raw: Mapping[str, Any], key_of_group: Mapping[str, str]) -> dict[Permission, str]:
    """The permissions of a described security group, one source each, with their descriptions."""
    return {permission: description for permission, (description, _) in _described(raw, key_of_group).items()}


def _described(raw: Mapping[str, Any], key_of_group: Mapping[str, str]) -> dict[Permission, tuple[str, str]]:
    """The permissions of a described group, each with its description and its source as AWS names it."""
    permissions: dict[Permission, tuple[str, str]] = {}
    for direction, field_name in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
        for perm in raw.get(field_name, []):
            protocol = str(perm["IpProtocol"])
            ports = (None, None) if protocol == "-1" else (perm.get("FromPort"), perm.get("ToPort"))
            sources = [("cidr", r["CidrIp"], r["CidrIp"], r) for r in perm.get("IpRanges", [])]
            sources += [("cidr6", r["CidrIpv6"], r["CidrIpv6"], r) for r in perm.get("Ipv6Ranges", [])]
            sources += [("group", key_of_group.get(r["GroupId"], r["GroupId"]), r["GroupId"], r)
                        for r in perm.get("UserIdGroupPairs", [])]
            sources += [("prefix", r["PrefixListId"], r["PrefixListId"], r) for r in perm.get("PrefixListIds", [])]
            for kind, source, named, entry in sources:
                permission = Permission(direction, protocol, ports[0], ports[1], kind, source)
                permissions[permission] = (entry.get("Description", "") or "", named)
    return permissions


def group_references(raw: Mapping[str, Any]) -> list[str]:
    """The ids of the groups a described security group's rules (inbound and outbound) name as a source."""
    return [pair["GroupId"] for field_name in ("IpPermissions", "IpPermissionsEgress")
            for perm in raw.get(field_name, []) for pair in perm.get("UserIdGroupPairs", [])]


def rule_key(group: str, permission: Permission) -> str:
    """The key of one rule of the group ``group`` (a key): its direction, protocol, ports and source."""
    return f"{group}/{permission.direction} {permission.protocol} {permission.from_port}-{permission.to_port} " \
           f"{permission.source_kind} {permission.source}"


def rule_permission(change: Change) -> Permission | None:
    """The permission a change of a security-group rule adds, changes or removes (None for another change)."""
    if change.kind != "security-group-rule":
        return None
    desired, found = change.args.get("desired"), change.args.get("found")
    permission = desired.props["permission"] if desired is not None else found.raw["Permission"] if found else None
    return permission if isinstance(permission, Permission) else None


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


def group_listing(ctx: StepContext) -> list[dict[str, Any]]:
    """Every security group of the owned VPCs: the owned groups (tagged) and the default group of each VPC.
    One call, read once for the kinds that need it."""
    vpcs = sorted(v["VpcId"] for v in listing(ctx, "vpcs"))
    return read_once(ctx, ("security-groups", tuple(vpcs)), lambda: paginate(
        ctx.client("ec2"), "describe_security_groups", "SecurityGroups",
        Filters=[{"Name": "vpc-id", "Values": vpcs}]) if vpcs else [])


class SecurityGroup(Ec2Kind):
    """A security group of the VPC. A new one holds the all-outbound rule only."""

    name = "security-group"
    clears: ClassVar[str] = "revoke_all"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        found = collect(spec, self.name, group_listing(ctx), "GroupId", lambda g: g["VpcId"] == vpc)
        names = {f.id: f"sg/{f.name}" for f in found}  # how the inventory names a rule's source group
        return [replace(f, raw={**f.raw, "SourceNames": names}) for f in found]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_security_group": security_group_request(lambda _: props["vpc"], desired.name,
                                                                props["description"], tags)}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_security_group"]
        group = ctx.client("ec2").create_security_group(**request)
        return Found(self.name, desired.key, group["GroupId"], dict(tags),
                     {"GroupId": group["GroupId"], "GroupName": desired.name, "VpcId": props["vpc"],
                      "IpPermissions": [], "IpPermissionsEgress": [ip_permission(str, ALL_OUTBOUND)]})

    def to_clear(self, found: Found) -> str | None:
        return "revoke its rules before deletion" if found.raw.get("IpPermissions") or group_references(found.raw) else None

    def clear(self, ctx: StepContext, found: Found) -> None:
        """Revoke every inbound rule of a group, and the outbound rules that name a group, by rule id (as they
        are now: a rule that names two groups is two rules, each revoked on its own)."""
        ec2 = ctx.client("ec2")
        # DescribeSecurityGroupRules gives each rule's id, IsEgress and ReferencedGroupInfo; the revoke calls
        # take SecurityGroupRuleId.N (EC2 API reference), so no rule is missed for a detail of how it is written.
        rules = paginate(ec2, "describe_security_group_rules", "SecurityGroupRules",
                         Filters=[{"Name": "group-id", "Values": [found.id]}])
        inbound = [r["SecurityGroupRuleId"] for r in rules if not r.get("IsEgress")]
        naming = [r["SecurityGroupRuleId"] for r in rules if r.get("IsEgress") and r.get("ReferencedGroupInfo")]
        if inbound:
            ignore_absent(ec2.revoke_security_group_ingress, GroupId=found.id, SecurityGroupRuleIds=inbound)
        if naming:
            ignore_absent(ec2.revoke_security_group_egress, GroupId=found.id, SecurityGroupRuleIds=naming)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        delete_when_free(ctx, f"{self.name} {found.name}", "group-id", found.id,
                         ctx.client("ec2").delete_security_group, GroupId=found.id)
        return None

    def stands_on(self, found: Found) -> list[str]:
        return [found.raw.get("VpcId", ""), *group_references(found.raw)]

    def describe(self, found: Found) -> str:
        return "; ".join(p.describe() for p in sorted(observed_permissions(found.raw, found.raw.get("SourceNames", {})))
                         if p.direction == "ingress") or "no inbound rule"


class SecurityGroupRule(Ec2Kind):
    """One rule of a security group: one permission with one source (a group source by key)."""

    name = "security-group-rule"
    tagged = False
    finds_after: ClassVar[tuple[str, ...]] = ("security-group",)
    goes_with: ClassVar[tuple[str, ...]] = ("group",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        groups = [f for f in known.values() if f.kind == "security-group"]
        key_of_group = {f.id: f.key for f in groups}
        return [Found(self.name, rule_key(group.key, permission), f"{group.id} {permission.describe()}",
                      {"Name": group.name}, {"GroupId": group.id, "Permission": permission, "Description": description,
                                             "SourceId": source}, parent=group.key)
                for group in groups for permission, (description, source) in _described(group.raw, key_of_group).items()]

    def as_made(self, desired: Desired) -> Found | None:
        """A new group holds the all-outbound rule (EC2 adds it to every group it creates in a VPC)."""
        if desired.props["permission"] != ALL_OUTBOUND:
            return None
        return Found(self.name, desired.key, "", {}, {"Permission": ALL_OUTBOUND, "Description": ""}, parent=desired.parent)

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        wanted = props["description"]
        return changed({"description": found.raw.get("Description")}, {"description": wanted}) if wanted else Differences()

    def _call(self, ctx: StepContext, operation: str, group: str, permission: Permission, source: str,
              description: str = "") -> None:
        getattr(ctx.client("ec2"), f"{operation}_{permission.direction}")(
            GroupId=group, IpPermissions=[ip_permission(lambda _: source, permission, description)])

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        permission: Permission = props["permission"]
        return {f"authorize_security_group_{permission.direction}": {
            "GroupId": props["group"],
            "IpPermissions": [ip_permission(lambda _: props.get("source"), permission, props["description"])]}}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        permission: Permission = props["permission"]
        ignore_codes(lambda: self._call(ctx, "authorize_security_group", props["group"], permission,
                                        props.get("source", ""), props["description"]),
                     ["InvalidPermission.Duplicate"])  # a rerun after a lost answer
        return Found(self.name, desired.key, f"{props['group']} {permission.describe()}", {"Name": desired.name},
                     {"GroupId": props["group"], "Permission": permission, "Description": props["description"],
                      "SourceId": props.get("source", permission.source)}, parent=desired.parent)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        self._call(ctx, "update_security_group_rule_descriptions", props["group"], props["permission"],
                   props.get("source", ""), changes["description"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_absent(lambda: self._call(ctx, "revoke_security_group", found.raw["GroupId"], found.raw["Permission"],
                                         found.raw["SourceId"]))
        return None


class DefaultSecurityGroup(Ec2Kind):
    """The VPC's default group, which EC2 makes with the VPC: the step keeps it without any rule."""

    name = "default-security-group"
    tagged = False

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        vpc = primary_vpc(ctx)
        return [Found(self.name, "default-sg", g["GroupId"], {"Name": f"default group of {spec.name('vpc')}"}, g,
                      parent="vpc")
                for g in group_listing(ctx) if g["VpcId"] == vpc and g["GroupName"] == "default"]

    def as_made(self, desired: Desired) -> Found | None:
        """As EC2 makes it with a VPC: all traffic from the group itself in, and all traffic out."""
        return Found(self.name, desired.key, "", {}, {"IpPermissions": [{"IpProtocol": "-1"}],
                                                      "IpPermissionsEgress": [{"IpProtocol": "-1"}]}, parent="vpc")

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        if found.raw.get("IpPermissions") or found.raw.get("IpPermissionsEgress"):
            return {"rules": "remove every inbound and outbound rule"}
        return {}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        return desired.detail

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {}  # made by EC2 with the VPC

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ec2, raw = ctx.client("ec2"), found.raw
        if not found.id:  # the VPC was created in this run
            answer = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [props["vpc"]]},
                                                           {"Name": "group-name", "Values": ["default"]}])
            raw = answer["SecurityGroups"][0]
        for field_name, verb in (("IpPermissions", "ingress"), ("IpPermissionsEgress", "egress")):
            if raw.get(field_name):
                getattr(ec2, f"revoke_security_group_{verb}")(GroupId=raw["GroupId"], IpPermissions=_clean(raw[field_name]))
