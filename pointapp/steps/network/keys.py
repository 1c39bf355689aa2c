"""The environment's customer-managed KMS key (``security.kms_key: true``) and its alias.

Made with the network, the first step, because the VPC flow log group is encrypted with it; the service's log
group and the artifact bucket use it too. Without it (``aws-managed``, the default) CloudWatch Logs encrypts the
log groups with its own key and S3 the buckets with SSE-S3: both encrypted, without a key to pay for and look after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.diffs import Differences
from pointapp.kinds import LogGroup, customer_key, policy
from pointapp.resources import Arn, Desired, Found, Kind, Ref, Request, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import KEY, is_owned

from .discovery import NAME


def alias_name(spec: Spec) -> str:
    return f"alias/pointapp/{spec.owner}"


def _key_id(found: Found) -> str:
    """The key's id: KMS takes it or the ARN (AWS KMS API reference, KeyId); the emulator only the id."""
    return str(found.raw.get("KeyId") or found.id)


def _kms_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": key, "TagValue": value} for key, value in tags.items()]


def _sub(text: str) -> Any:
    """``text``, or a template's ``Fn::Sub`` of it where it names the stack's region."""
    return {"Fn::Sub": text} if "${" in text else text


def key_policy(spec: Spec, region: str) -> dict[str, Any]:
    """The key policy: the account administers it through IAM (AWS KMS Developer Guide, "Default key policy"),
    and CloudWatch Logs in this region may use it for this environment's log groups only (Amazon CloudWatch Logs
    User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the regional principal and the
    ``kms:EncryptionContext:aws:logs:arn`` condition). S3 uses it with the caller's own IAM permissions."""
    return policy(
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow", "Principal": {"AWS": Arn("iam", "root", "", None)},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudWatchLogsOfThisEnvironment", "Effect": "Allow",
         "Principal": {"Service": _sub(f"logs.{region}.amazonaws.com")},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*",
         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                   Arn("logs", f"log-group:{LogGroup.prefix(spec)}*", None, None)}}})


def _aliases(ctx: StepContext) -> list[dict[str, Any]]:
    kms = ctx.client("kms")
    return ctx.read_once(("kms-aliases",), lambda: [a for page in kms.get_paginator("list_aliases").paginate()
                                                    for a in page.get("Aliases", [])])


class KmsKey(Kind):
    """A symmetric customer-managed key with automatic rotation (FSBP KMS.4), found by its alias. KMS deletes a
    key only after a waiting period of 7 to 30 days (AWS KMS Developer Guide, "Deleting AWS KMS keys"): ``down``
    schedules the deletion and says when it happens."""

    name = "kms-key"
    service = "kms"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        aliases = _aliases(ctx)
        alias = next((a for a in aliases if a.get("AliasName") == alias_name(spec) and a.get("TargetKeyId")), None)
        if alias is not None:
            return self._owned(ctx, spec, step, alias["TargetKeyId"], alias["AliasName"])
        if customer_key(spec) is None:
            return []  # no key wanted: no listing of the account's keys on every plan
        # No alias points at a key: a CreateAlias failed (or its answer was lost) after CreateKey. The key is found
        # by its ownership tags, or the next up would make a second one: a leak, as a key is billed monthly and goes
        # only 7 to 30 days after its deletion is scheduled (AWS KMS Developer Guide, "AWS KMS pricing" and
        # "Deleting AWS KMS keys"). KMS filters keys by nothing: ListKeys, then ListResourceTags of each key no alias
        # points at (the AWS managed keys have theirs, alias/aws/..., AWS KMS Developer Guide, "AWS managed keys"; so do
        # most keys of other tools, and the key sought has none), then DescribeKey of this environment's only (AWS KMS
        # API reference, ListKeys, ListResourceTags). The Resource Groups Tagging API would be one call, but its index
        # lags behind a key tagged moments ago.
        kms = ctx.client("kms")
        aliased = {a.get("TargetKeyId") for a in aliases if a.get("TargetKeyId")}
        found = []
        for page in kms.get_paginator("list_keys").paginate():
            for key in page.get("Keys", []):
                if key["KeyId"] not in aliased:
                    found += self._owned(ctx, spec, step, key["KeyId"], None)
        return sorted(found, key=lambda f: str(f.raw.get("CreationDate")))  # the oldest is the key; any other a stray

    def _owned(self, ctx: StepContext, spec: Spec, step: str, key_id: str, alias: str | None) -> list[Found]:
        """The key ``key_id`` (its alias ``alias``, if any) when this step of this environment owns it and it is
        not pending deletion."""
        kms = ctx.client("kms")
        # a key of another tool whose key policy does not let this account read its tags is not this environment's
        answer = ignore_codes(kms.list_resource_tags, [] if alias else ["AccessDeniedException"], KeyId=key_id)
        tags = {t["TagKey"]: t["TagValue"] for t in (answer or {}).get("Tags", [])}
        if not is_owned(tags, spec, step):
            return []
        metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        if metadata.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
            return []
        raw = {**metadata, "Alias": alias,
               "Rotation": kms.get_key_rotation_status(KeyId=metadata["KeyId"]).get("KeyRotationEnabled"),
               "Policy": json.loads(kms.get_key_policy(KeyId=metadata["KeyId"], PolicyName="default")["Policy"])}
        return [Found(self.name, tags[KEY], metadata["Arn"], tags, raw)]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        changes = Differences()
        if not found.raw.get("Rotation"):
            changes.add("rotation", False, True)
        if found.raw.get("Policy") != json.loads(json.dumps(props["policy"])):
            changes.add("policy", "another policy", "as specified")
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_key": dict(Description=desired.detail, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT",
                                   Policy=json.dumps(props["policy"]), Tags=_kms_tags(tags)),
                "enable_key_rotation": dict(KeyId=props.get("key_id"))}  # the id the create learns, in the props

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        kms = ctx.client("kms")
        metadata = kms.create_key(**self.request(ctx.spec, desired, props, tags)["create_key"])["KeyMetadata"]
        kms.enable_key_rotation(**self.request(ctx.spec, desired, {**props, "key_id": metadata["KeyId"]}, tags)[
            "enable_key_rotation"])
        return Found(self.name, desired.key, metadata["Arn"], dict(tags), {**metadata, "Rotation": True})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        ctx.client("kms").tag_resource(KeyId=_key_id(found), Tags=_kms_tags(tags))

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        kms = ctx.client("kms")
        if "rotation" in changes:
            kms.enable_key_rotation(KeyId=_key_id(found))
        if "policy" in changes:
            kms.put_key_policy(KeyId=_key_id(found), PolicyName="default", Policy=json.dumps(props["policy"]))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        kms, days = ctx.client("kms"), ctx.spec.security.key_deletion_days
        if found.raw.get("Alias"):
            ignore_codes(kms.delete_alias, ["NotFoundException"], AliasName=found.raw["Alias"])
        ignore_codes(kms.schedule_key_deletion, ["NotFoundException", "KMSInvalidStateException"], KeyId=_key_id(found),
                     PendingWindowInDays=days)
        ctx.say(f"    KMS key {found.id.rsplit('/', 1)[-1]}: deletion scheduled in {days} days (security.key_deletion_days); "
                "until then `aws kms cancel-key-deletion` brings it back, and what it encrypted stays readable")
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        return f"{raw.get('Alias') or 'no alias'}, {raw.get('KeyState')}, rotation {'on' if raw.get('Rotation') else 'OFF'}"

    def outputs(self, found: Found) -> dict[str, Any]:
        return {"alias": found.raw.get("Alias")}


class KmsAlias(Kind):
    """The key's alias (``alias/pointapp/<prefix>-<env>``): how pointapp finds the key. A part of the key: it goes
    with it on ``down``."""

    name = "kms-alias"
    service = "kms"
    tagged = False
    finds_after = ("kms-key",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        key = known.get("kms/key")
        if key is None or not key.raw.get("Alias"):  # a key without its alias: the alias is made anew
            return []
        return [Found(self.name, "kms/alias", key.raw["Alias"], {"Name": key.raw["Alias"]},
                      {"TargetKeyId": key.raw.get("KeyId")}, parent="kms/key")]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_alias": dict(AliasName=desired.name, TargetKeyId=props["key"])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ctx.client("kms").create_alias(**self.request(ctx.spec, desired, props, tags)["create_alias"])
        return Found(self.name, desired.key, desired.name, dict(tags), {"TargetKeyId": props["key"]}, parent=desired.parent)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # the key's delete removes it

    def describe(self, found: Found) -> str:
        return f"-> {found.raw.get('TargetKeyId')}"


def key_resources(spec: Spec, region: str) -> list[Desired]:
    """The key and its alias, when ``security.kms_key`` is on."""
    if customer_key(spec) is None:
        return []
    return [
        Desired("kms-key", "kms/key", spec.name("key"), {"policy": key_policy(spec, region)},
                f"{spec.owner}: log groups and artifact bucket, rotated yearly"),
        Desired("kms-alias", "kms/alias", alias_name(spec), {"key": Ref(NAME, "kms/key")}, "how pointapp finds the key",
                parent="kms/key"),
    ]


#: The kinds of the key, in creation order.
KEY_KINDS = (KmsKey(), KmsAlias())
