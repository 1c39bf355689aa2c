"""Resource kinds shared by several steps: IAM roles, CloudWatch log groups, and the subnet groups of RDS and
ElastiCache."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import botocore.exceptions

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.errors import SpecError, StepError
from pointapp.resources import Arn, Desired, Found, Kind, Request, client_error_code, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import ENVIRONMENT, KEY, STEP, add_tags, aws_tags, from_aws_tags, is_owned
from pointapp.typical import Typical

#: The services whose resources pointapp finds by name and whose tags one Resource Groups Tagging API
#: listing gives (their describe calls return no tags). EC2, ECS, IAM and SES return tags themselves.
LISTED_SERVICES = ("codedeploy", "codepipeline", "ecr", "elasticache", "elasticloadbalancing", "events", "logs",
                   "rds", "s3")


def _plain_arn(arn: str) -> str:
    return arn[:-2] if arn.endswith(":*") else arn  # CloudWatch Logs describes a group's ARN with ":*"


def listed_tags(ctx: StepContext) -> Mapping[str, dict[str, str]]:
    """The tags of every resource of this environment in :data:`LISTED_SERVICES`, by ARN: one paginated
    ``GetResources`` call for all steps, read once until the next change."""

    def load() -> dict[str, dict[str, str]]:
        try:
            pages = ctx.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
                TagFilters=[{"Key": ENVIRONMENT, "Values": [ctx.spec.owner]}],
                ResourceTypeFilters=list(LISTED_SERVICES), TagsPerPage=500)
            return {_plain_arn(item["ResourceARN"]): from_aws_tags(item.get("Tags"))
                    for page in pages for item in page.get("ResourceTagMappingList", [])}
        except botocore.exceptions.ClientError:
            return {}  # not allowed (no tag:GetResources) or not offered: each resource's tags are read on their own

    return ctx.read_once(("listed-tags", ctx.spec.owner), load)


def tags_of(ctx: StepContext, arn: str, read: Callable[[], Mapping[str, str]]) -> dict[str, str]:
    """The tags of the resource ``arn``: from :func:`listed_tags` when the listing holds it, else ``read()``.

    The listing may lack a resource: one tagged moments ago (the tagging index catches up within minutes),
    one no longer tagged for this environment, or a type the target does not list. Reading that one
    resource's tags keeps the ownership check exact; the listing only saves calls.
    """
    listed = listed_tags(ctx).get(_plain_arn(arn))
    return dict(listed) if listed is not None else dict(read())


def role_path(spec: Spec) -> str:
    """Every role pointapp makes lives under this IAM path, so one listing finds them all."""
    return f"/pointapp/{spec.owner}/"


def role_arn(ctx: StepContext, name: str) -> str:
    """The ARN of the role pointapp names ``<prefix>-<env>-<name>`` (known before it exists)."""
    return pointapp_role(ctx.spec, name, account=None).on(ctx)


def pointapp_role(spec: Spec, name: str, account: str | None = "*") -> Arn:
    """The ARN of the role pointapp names ``<prefix>-<env>-<name>``, in ``account`` (None: the target's)."""
    return Arn("iam", f"role{role_path(spec)}{spec.name(name)}", "", account)


def trust_policy(*services: str, statement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A trust policy for AWS service principals, or one explicit statement."""
    if statement is not None:
        return {"Version": "2012-10-17", "Statement": [dict(statement)]}
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": sorted(services) if len(services) > 1 else services[0]},
         "Action": "sts:AssumeRole"}]}


def policy(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def document(value: Any) -> Any:
    """IAM returns policy documents URL-encoded (real AWS) or decoded (some emulators)."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value


def account_roles(ctx: StepContext, spec: Spec) -> list[dict[str, Any]]:
    """Every role under pointapp's path for this environment, with tags and policies: one paginated call
    for all steps (instead of a listing, then tags and policies role by role, in every step)."""

    def load() -> list[dict[str, Any]]:
        pages = ctx.client("iam").get_paginator("get_account_authorization_details").paginate(Filter=["Role"])
        return [role for page in pages for role in page.get("RoleDetailList", []) if role.get("Path") == role_path(spec)]

    return list(ctx.read_once(("iam-roles", role_path(spec)), load))


class Role(Kind):
    """An IAM role: trust policy, managed policies, inline policies."""

    name = "iam-role"
    service = "iam"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        found = []
        for role in account_roles(ctx, spec):
            tags = from_aws_tags(role.get("Tags"))
            if not is_owned(tags, spec, step):
                continue
            raw = {key: value for key, value in role.items() if key not in ("RolePolicyList", "AttachedManagedPolicies")}
            raw["AssumeRolePolicyDocument"] = document(role["AssumeRolePolicyDocument"])
            raw["Managed"] = sorted(p["PolicyArn"] for p in role.get("AttachedManagedPolicies", []))
            raw["Inline"] = {p["PolicyName"]: document(p["PolicyDocument"]) for p in role.get("RolePolicyList", [])}
            found.append(Found(self.name, tags[KEY], role["RoleName"], tags, raw))
        return found

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        current = {"trust": raw["AssumeRolePolicyDocument"], "managed": raw["Managed"], "inline": raw["Inline"]}
        wanted = {"trust": props["trust"], "managed": sorted(props.get("managed", [])), "inline": props.get("inline", {})}
        return changed(current, wanted)

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        managed = sorted(props.get("managed", []), key=str)  # ARNs, or a template's expressions of them
        return {"create_role": dict(RoleName=desired.name, Path=role_path(spec), Description=desired.detail[:1000],
                                    AssumeRolePolicyDocument=json.dumps(props["trust"]), Tags=aws_tags(tags)),
                "attach_role_policy": [dict(RoleName=desired.name, PolicyArn=arn)  # each once
                                       for i, arn in enumerate(managed) if arn not in managed[:i]],
                "put_role_policy": [dict(RoleName=desired.name, PolicyName=name, PolicyDocument=json.dumps(document))
                                    for name, document in props.get("inline", {}).items()]}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        iam = ctx.client("iam")
        request = self.request(ctx.spec, desired, props, tags)
        role = iam.create_role(**request["create_role"])["Role"]
        for call in request["attach_role_policy"]:
            iam.attach_role_policy(**call)
        for call in request["put_role_policy"]:
            iam.put_role_policy(**call)
        return Found(self.name, desired.key, desired.name, dict(tags),
                     {**role, "AssumeRolePolicyDocument": props["trust"],
                      "Managed": [call["PolicyArn"] for call in request["attach_role_policy"]],
                      "Inline": dict(props.get("inline", {}))})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        ctx.client("iam").tag_role(RoleName=found.id, Tags=aws_tags(tags))

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        iam = ctx.client("iam")
        if "trust" in changes:
            iam.update_assume_role_policy(RoleName=found.id, PolicyDocument=json.dumps(changes["trust"]))
        if "managed" in changes:
            for arn in sorted(set(changes["managed"]) - set(found.raw["Managed"])):
                iam.attach_role_policy(RoleName=found.id, PolicyArn=arn)
            for arn in sorted(set(found.raw["Managed"]) - set(changes["managed"])):
                iam.detach_role_policy(RoleName=found.id, PolicyArn=arn)
        if "inline" in changes:
            for name, document in changes["inline"].items():
                if found.raw["Inline"].get(name) != document:
                    iam.put_role_policy(RoleName=found.id, PolicyName=name, PolicyDocument=json.dumps(document))
            for name in set(found.raw["Inline"]) - set(changes["inline"]):
                iam.delete_role_policy(RoleName=found.id, PolicyName=name)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        iam = ctx.client("iam")
        for arn in found.raw.get("Managed", []):
            ignore_codes(iam.detach_role_policy, ["NoSuchEntity"], RoleName=found.id, PolicyArn=arn)
        for name in found.raw.get("Inline", {}):
            ignore_codes(iam.delete_role_policy, ["NoSuchEntity"], RoleName=found.id, PolicyName=name)
        ignore_codes(iam.delete_role, ["NoSuchEntity"], RoleName=found.id)
        return None

    def describe(self, found: Found) -> str:
        inline = ", ".join(found.raw.get("Inline", {})) or "no inline policy"
        managed = ", ".join(arn.rsplit("/", 1)[-1] for arn in found.raw.get("Managed", [])) or "no managed policy"
        return f"{found.raw.get('Arn')}; {managed}; {inline}"


def _log_group_tags(logs: Any, group: Mapping[str, Any]) -> dict[str, str]:
    return dict(logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags", {}))


class LogGroup(Kind):
    """A CloudWatch Logs group with a retention period."""

    name = "log-group"
    service = "logs"

    @staticmethod
    def prefix(spec: Spec) -> str:
        return f"/pointapp/{spec.owner}/"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        logs = ctx.client("logs")

        def load() -> list[tuple[dict[str, Any], dict[str, str]]]:
            groups = [g for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=self.prefix(spec))
                      for g in page["logGroups"]]
            return map_side_by_side(  # the tags of each group the listing lacks: one call per group
                lambda g: (g, tags_of(ctx, g.get("logGroupArn") or g["arn"], lambda: _log_group_tags(logs, g))), groups)

        groups = ctx.read_once(("log-groups", self.prefix(spec)), load)
        return self.owned(spec, step, [g for g, _ in groups], lambda g: g["logGroupName"],
                          lambda g: next(tags for group, tags in groups if group is g))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return changed({"retention_days": found.raw.get("retentionInDays")}, {"retention_days": props["retention_days"]})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_log_group": dict(logGroupName=desired.name, tags=dict(tags)),
                "put_retention_policy": dict(logGroupName=desired.name, retentionInDays=props["retention_days"])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        logs = ctx.client("logs")
        request = self.request(ctx.spec, desired, props, tags)
        logs.create_log_group(**request["create_log_group"])
        logs.put_retention_policy(**request["put_retention_policy"])
        return Found(self.name, desired.key, desired.name, dict(tags),
                     {"logGroupName": desired.name, "retentionInDays": props["retention_days"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "logs", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "retention_days" in changes:
            ctx.client("logs").put_retention_policy(logGroupName=found.id, retentionInDays=changes["retention_days"])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("logs").delete_log_group, ["ResourceNotFoundException"], logGroupName=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"retention {found.raw.get('retentionInDays')} days"


class SubnetGroup(Kind):
    """A subnet group of RDS or ElastiCache: the two APIs have the same calls, named after ``noun``
    (``DBSubnetGroup``: CreateDBSubnetGroup with DBSubnetGroupName, DBSubnetGroupDescription, SubnetIds and
    Tags; ModifyDBSubnetGroup; DeleteDBSubnetGroup, DBSubnetGroupNotFoundFault once it is gone; RDS API
    reference and Amazon ElastiCache API reference). A subclass sets ``noun``, its ``call`` (the boto3 name
    of the noun), the key of the group's ARN in a description (``arn_key``), and finds the group."""

    noun = ""
    call = ""
    arn_key = ""

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = sorted(s["SubnetIdentifier"] for s in found.raw.get("Subnets", []))
        return changed({"subnets": current}, {"subnets": sorted(props["subnets"])})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {f"create_{self.call}": {f"{self.noun}Name": desired.name, f"{self.noun}Description": desired.detail,
                                        "SubnetIds": list(props["subnets"]), "Tags": aws_tags(tags)}}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        create = getattr(ctx.client(self.service), f"create_{self.call}")
        group = create(**self.request(ctx.spec, desired, props, tags)[f"create_{self.call}"])[self.noun]
        return Found(self.name, desired.key, desired.name, dict(tags), group)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, self.service, found.raw[self.arn_key], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        if "subnets" in changes:
            getattr(ctx.client(self.service), f"modify_{self.call}")(
                **{f"{self.noun}Name": found.id, "SubnetIds": changes["subnets"]})

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(getattr(ctx.client(self.service), f"delete_{self.call}"), [f"{self.noun}NotFoundFault"],
                     **{f"{self.noun}Name": found.id})
        return None

    def describe(self, found: Found) -> str:
        return ", ".join(sorted(s["SubnetIdentifier"] for s in found.raw.get("Subnets", [])))


# --- Route 53 records: the user's hosted zone, and the records pointapp writes into it ---------------------

#: Route 53 records carry no tags: beside each record pointapp writes, a TXT record proves that it wrote it (as
#: external-dns's TXT registry does), named ``_pointapp-<type>.<name>`` (a CNAME allows no other record at its
#: own name: RFC 1034, section 3.6.2) and naming the environment, the step and the key. A record without one is
#: someone else's: pointapp never overwrites or deletes it.
OWNER_PREFIX = "_pointapp-"
#: How long a Route 53 change takes from PENDING to INSYNC, on all of Route 53's authoritative name servers.
DNS_CHANGE = Typical("dns-change", 60, "a Route 53 change from PENDING to INSYNC on all its name servers",
                     "Route 53 API reference, ChangeResourceRecordSets and GetChange (changes generally propagate "
                     "to all Route 53 name servers within 60 seconds); botocore waiter ResourceRecordSetsChanged: 30 s x 60")


def fqdn(name: str) -> str:
    """A DNS name as Route 53 describes it: lower case, with the final dot."""
    return name.lower().rstrip(".") + "."


def owner_record_name(name: str, record_type: str) -> str:
    """The name of the ownership TXT record beside the record ``name`` of ``record_type``."""
    return fqdn(f"{OWNER_PREFIX}{record_type.lower()}.{name.rstrip('.')}")


def owner_value(owner: str, step: str, key: str, kind: str) -> str:
    """The ownership TXT record's value (quoted, as a TXT value is written): the environment, step, key and kind."""
    return f'"pointapp-owner={owner},step={step},key={key},kind={kind}"'


def _owner_tags(value: str, kind: str) -> dict[str, str]:
    fields = dict(part.split("=", 1) for part in value.strip('"').split(",") if "=" in part)
    if "pointapp-owner" not in fields or fields.get("kind") != kind:
        return {}
    return {ENVIRONMENT: fields["pointapp-owner"], STEP: fields.get("step", ""), KEY: fields.get("key", "")}


def hosted_zone(ctx: StepContext, spec: Spec) -> dict[str, Any]:
    """The public hosted zone ``domain.name`` names (looked up once a run, never made): its ``Id`` and ``Name``.
    None there, or only a private one, is a one-line error naming ``domain.name``, before any change."""
    assert spec.domain is not None
    name = spec.domain.name

    def load() -> dict[str, Any]:
        # ListHostedZonesByName lists zones in name order from DNSName on (Route 53 API reference): a public
        # and a private zone may share a name.
        answer = ctx.client("route53").list_hosted_zones_by_name(DNSName=name, MaxItems="10")
        zones = [z for z in answer.get("HostedZones", []) if z["Name"].lower() == fqdn(name)]
        public = [z for z in zones if not z.get("Config", {}).get("PrivateZone")]
        if not public:
            what = "only a private hosted zone" if zones else "no hosted zone"
            raise SpecError("domain.name", f"{name}: Route 53 has {what} of that name in this account; pointapp "
                            "needs an existing public hosted zone you own (it never creates or deletes one)")
        return {"Id": public[0]["Id"].rsplit("/", 1)[-1], "Name": public[0]["Name"]}

    return dict(ctx.read_once(("hosted-zone", name), load))


def zone_records(ctx: StepContext, zone_id: str) -> list[dict[str, Any]]:
    """Every record set of the zone, read once until the next change."""

    def load() -> list[dict[str, Any]]:
        pages = ctx.client("route53").get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
        return [record for page in pages for record in page["ResourceRecordSets"]]

    return list(ctx.read_once(("zone-records", zone_id), load))


def _values(record: Mapping[str, Any]) -> list[str]:
    return sorted(str(r["Value"]) for r in record.get("ResourceRecords", []))


def record_set(props: Mapping[str, Any]) -> dict[str, Any]:
    """The ResourceRecordSet the props describe: values with a TTL, or an alias to an AWS resource."""
    def name(value: Any) -> Any:
        return fqdn(value) if isinstance(value, str) else value  # a template's expression stays as it is

    record: dict[str, Any] = {"Name": name(props["name"]), "Type": props["type"]}
    if props.get("alias"):
        record["AliasTarget"] = {"HostedZoneId": props["alias"]["zone"], "DNSName": name(props["alias"]["name"]),
                                 "EvaluateTargetHealth": True}
    else:
        record.update(TTL=props.get("ttl", 300), ResourceRecords=[{"Value": v} for v in props["values"]])
    return record


class DnsRecord(Kind):
    """A record set pointapp writes into the user's hosted zone, with its ownership TXT record beside it.

    Both are written in one change batch, which Route 53 applies all or nothing (Route 53 API reference,
    ChangeResourceRecordSets), then waited for until INSYNC. A record of that name and type that exists without
    pointapp's ownership record is refused, never UPSERTed over; ``down`` deletes exactly the records whose
    ownership record names this environment, and never the zone.
    """

    name = "dns-record"
    service = "route53"
    tagged = False
    typical = DNS_CHANGE

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        return (self.typical,) if spec.domain else ()  # no domain: no record, nothing to wait for

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        if spec.domain is None:
            return []
        zone = hosted_zone(ctx, spec)
        records = zone_records(ctx, zone["Id"])
        by_name = {(r["Name"].lower(), r["Type"]): r for r in records}
        marked = []
        for marker in records:
            if marker["Type"] != "TXT" or not marker["Name"].lower().startswith(OWNER_PREFIX):
                continue
            tags = _owner_tags(" ".join(_values(marker)), self.name)
            if not tags:
                continue
            kind_of, name = marker["Name"].lower()[len(OWNER_PREFIX):].split(".", 1)
            record = by_name.get((name, kind_of.upper()))
            marked.append({"Name": name, "Type": kind_of.upper(), "record": record, "marker": marker, "zone": zone["Id"],
                           "tags": {**tags, "Name": name}})
        return self.owned(spec, step, marked, lambda m: f"{m['Name']} {m['Type']}", lambda m: m["tags"])

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        record = found.raw.get("record")
        wanted = record_set(props)
        if record is None:
            return changed({"record": None}, {"record": f"{wanted['Type']} {wanted['Name']}"})
        if fqdn(record["Name"]) != wanted["Name"]:
            return changed({"name": record["Name"]}, {"name": wanted["Name"]})
        if "AliasTarget" in wanted:
            current = fqdn(record.get("AliasTarget", {}).get("DNSName", ""))
            return changed({"alias": current}, {"alias": wanted["AliasTarget"]["DNSName"]})
        return changed({"values": _values(record), "ttl": record.get("TTL")},
                       {"values": _values(wanted), "ttl": wanted["TTL"]})

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        wanted = record_set(props)
        if found.raw.get("Name") != wanted["Name"] and not str(props["name"]).startswith("<"):
            return f"named {found.raw.get('Name')}"  # a record's name is its identity: a new one, the old deleted
        return None

    def _marker(self, tags: Mapping[str, str], record: Mapping[str, Any]) -> dict[str, Any]:
        return {"Name": owner_record_name(record["Name"], record["Type"]), "Type": "TXT", "TTL": 300,
                "ResourceRecords": [{"Value": owner_value(tags[ENVIRONMENT], tags[STEP], tags[KEY], self.name)}]}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        record = record_set(props)
        changes = [{"Action": "CREATE", "ResourceRecordSet": record}]
        if ENVIRONMENT in tags and isinstance(record["Name"], str):  # a stack owns its records: no ownership record
            changes.append({"Action": "CREATE", "ResourceRecordSet": self._marker(tags, record)})
        return {"change_resource_record_sets": dict(HostedZoneId=props["zone"], ChangeBatch={
            "Comment": f"pointapp {spec.owner}: {desired.detail}"[:256], "Changes": changes})}

    def _change(self, ctx: StepContext, zone: str, batch: Mapping[str, Any], what: str) -> None:
        route53 = ctx.client("route53")
        change = route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=dict(batch))["ChangeInfo"]
        # Route 53 answers PENDING and applies the change on its name servers within about a minute (GetChange).
        if change.get("Status") != "INSYNC":
            wait_for(ctx, route53, "resource_record_sets_changed", f"Route 53 to apply {what}", self.typical,
                     real_delay=15, max_attempts=60, Id=change["Id"])

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["change_resource_record_sets"]
        record = request["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]
        records = zone_records(ctx, props["zone"])
        taken = [r for r in records if r["Name"].lower() == record["Name"]
                 and (r["Type"] == record["Type"] or "CNAME" in (r["Type"], record["Type"]))]
        if taken:
            marker_name = owner_record_name(record["Name"], taken[0]["Type"])
            owners = [_owner_tags(" ".join(_values(r)), kind).get(ENVIRONMENT) for r in records
                      if r["Name"].lower() == marker_name and r["Type"] == "TXT" for kind in ("dns-record", "dkim-record")]
            whose = next((f"pointapp environment {owner}'s (its ownership record {marker_name})" for owner in owners if owner),
                         f"not pointapp's (no ownership record {marker_name})")
            raise StepError(ctx.work_of_step or "dns", f"{self.name} {record['Name']}",
                            f"a {taken[0]['Type']} record of that name exists in the zone and is {whose}: pointapp never "
                            "overwrites a record it did not write; remove it, or use another domain.name")
        marker = self._marker(tags, record)
        if any(r["Name"].lower() == marker["Name"] and r["Type"] == "TXT" for r in records):
            request["ChangeBatch"]["Changes"][1]["Action"] = "UPSERT"  # left by a run that stopped halfway: ours
        self._change(ctx, props["zone"], request["ChangeBatch"], f"{record['Type']} {record['Name']}")
        return Found(self.name, desired.key, f"{record['Name']} {record['Type']}", {**tags, "Name": record["Name"]},
                     {"Name": record["Name"], "Type": record["Type"], "record": record, "marker": marker,
                      "zone": props["zone"]})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        record = record_set(props)  # the ownership record proves it is ours: UPSERT is safe
        self._change(ctx, props["zone"], {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
                     f"{record['Type']} {record['Name']}")
        found.raw["record"] = record

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        # A DELETE names the record set exactly as it is (Route 53 API reference, ChangeResourceRecordSets).
        changes = [{"Action": "DELETE", "ResourceRecordSet": found.raw[part]}
                   for part in ("record", "marker") if found.raw.get(part)]
        try:
            self._change(ctx, found.raw["zone"], {"Changes": changes}, f"the deletion of {found.id}")
        except botocore.exceptions.ClientError as error:
            if client_error_code(error) != "InvalidChangeBatch" or "not found" not in str(error):
                raise  # gone already: done
        return None

    def describe(self, found: Found) -> str:
        record = found.raw.get("record") or {}
        target = record.get("AliasTarget", {}).get("DNSName") or ", ".join(_values(record)) or "missing"
        return f"{found.raw.get('Type')} -> {target} (ownership TXT {owner_record_name(found.raw['Name'], found.raw['Type'])})"
