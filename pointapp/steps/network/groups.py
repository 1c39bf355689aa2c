"""Security groups: the groups, their rules (one permission with one source each), and the VPC's default
group, which the step keeps empty. Before groups are deleted, their rules that name a group are revoked
by rule id, so no group is refused for another's reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pointapp.plan import Change
from pointapp.tags import tag_specifications

from .base import Id, Planner
from .discovery import paginate
from .layout import ALL_OUTBOUND, Permission
from .waits import Waits


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


def group_references(raw: Mapping[str, Any]) -> list[str]:
    """The ids of the groups a described security group's rules (inbound and outbound) name as a source."""
    return [pair["GroupId"] for field_name in ("IpPermissions", "IpPermissionsEgress")
            for perm in raw.get(field_name, []) for pair in perm.get("UserIdGroupPairs", [])]



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


class GroupPlan(Planner):
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


class GroupWork(Waits):
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


    def op_revoke_all(self, change: Change) -> None:
        """Revoke every inbound rule of a group, and the outbound rules that name a group, by rule id (as they
        are now: a rule that names two groups is two rules, each revoked on its own)."""
        group_id = change.args["id"]
        # DescribeSecurityGroupRules gives each rule's id, IsEgress and ReferencedGroupInfo; the revoke calls
        # take SecurityGroupRuleId.N (EC2 API reference), so no rule is missed for a detail of how it is written.
        rules = paginate(self.ec2, "describe_security_group_rules", "SecurityGroupRules",
                          Filters=[{"Name": "group-id", "Values": [group_id]}])
        inbound = [r["SecurityGroupRuleId"] for r in rules if not r.get("IsEgress")]
        naming = [r["SecurityGroupRuleId"] for r in rules if r.get("IsEgress") and r.get("ReferencedGroupInfo")]
        if inbound:
            self.ec2.revoke_security_group_ingress(GroupId=group_id, SecurityGroupRuleIds=inbound)
        if naming:
            self.ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=naming)

    def delete_security_group(self, change: Change, group_id: str) -> None:
        self.delete_when_free(change, "group-id", self.ec2.delete_security_group, GroupId=group_id)
