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
from pointapp.diffs import Differences, changed
from pointapp.errors import SpecError, StepError
from pointapp.outputs import KMS_KEY
from pointapp.resources import Arn, Desired, Found, Kind, Ref, Request, client_error_code, ignore_codes, wait_for
from pointapp.spec import Spec
from pointapp.tags import ENVIRONMENT, KEY, STEP, add_tags, aws_tags, from_aws_tags, is_owned
from pointapp.typical import Typical

#: The services whose resources pointapp finds by name and whose tags one Resource Groups Tagging API
#: listing gives (their describe calls return no tags). EC2, ECS, IAM and SES return tags themselves.
LISTED_SERVICES = ("backup", "codedeploy", "codepipeline", "ecr", "elasticache", "elasticloadbalancing", "events", "logs",
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


#: The account pointapp works in, as a value inside props: resolved like an :class:`Arn`'s own account (the
#: target's, asked once; ``AWS::AccountId`` in a template).
ACCOUNT = Ref("runtime", "account")

#: Service principals that set ``aws:SourceAccount`` and ``aws:SourceArn`` when they assume a role, with the
#: ARN they set (``ArnLike``) and the AWS documentation that says so. A guard on a key the service does not
#: set would refuse the service itself, so only these get one (IAM User Guide, "The confused deputy problem").
SOURCE_ARNS: dict[str, Callable[[Spec], Arn]] = {
    # ECS Developer Guide, "Amazon ECS task IAM role": ArnLike aws:SourceArn arn:<partition>:ecs:<region>:<account>:*
    # and StringEquals aws:SourceAccount in the trust relationship; ECS assumes the execution role the same way.
    "ecs-tasks.amazonaws.com": lambda spec: Arn("ecs", "*", None, None),
    # Amazon VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs": the source ARN is the flow log's.
    "vpc-flow-logs.amazonaws.com": lambda spec: Arn("ec2", "vpc-flow-log/*", None, None),
    # CodeDeploy User Guide, "Cross-service confused deputy prevention": the deployment group's ARN.
    "codedeploy.amazonaws.com": lambda spec: Arn("codedeploy", f"deploymentgroup:{spec.name('api')}/*", None, None),
    # CodePipeline User Guide, "Cross-service confused deputy prevention": the pipeline's ARN.
    "codepipeline.amazonaws.com": lambda spec: Arn("codepipeline", spec.name("release"), None, None),
    # EventBridge User Guide, "Cross-service confused deputy prevention": the rule's ARN.
    "events.amazonaws.com": lambda spec: Arn("events", f"rule/{spec.name('release-on-push')}", None, None),
    # RDS User Guide, "Setting up and enabling Enhanced Monitoring", "Protecting against the confused deputy
    # problem": the DB instance's ARN.
    "monitoring.rds.amazonaws.com": lambda spec: Arn("rds", f"db:{spec.name('mysql')}", None, None),
}

#: Service principals that set neither key when they assume a role, so their roles carry no guard, and why.
UNGUARDED: dict[str, str] = {
    # Prowler's own tracker lists EC2 among the false positives of this check (prowler-cloud/prowler #2810).
    "ec2.amazonaws.com": "EC2 assumes an instance profile's role with no aws:SourceAccount or aws:SourceArn "
                         "(IAM User Guide, \"The confused deputy problem\", lists no instance-profile key); the "
                         "role can only be passed within the account (iam:PassRole)",
    "backup.amazonaws.com": "AWS Backup documents the keys for its resource policies (SNS topics, KMS keys) only, "
                            "not for the service role it assumes (AWS Backup Developer Guide, \"Cross-service "
                            "confused deputy prevention\"); the role can only be passed within the account",
}


def trust_policy(*services: str, statement: Mapping[str, Any] | None = None, spec: Spec | None = None) -> dict[str, Any]:
    """A trust policy for AWS service principals, or one explicit statement.

    With ``spec``, a principal of :data:`SOURCE_ARNS` may assume the role only for this account's own resource
    (the confused-deputy guard: ``aws:SourceAccount`` and ``aws:SourceArn``); one of :data:`UNGUARDED` gets none.
    """
    if statement is not None:
        return {"Version": "2012-10-17", "Statement": [dict(statement)]}
    trust: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": sorted(services) if len(services) > 1 else services[0]},
                             "Action": "sts:AssumeRole"}
    sources = [SOURCE_ARNS[s](spec) for s in sorted(services) if s in SOURCE_ARNS] if spec is not None else []
    if sources:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                              "ArnLike": {"aws:SourceArn": sources[0] if len(sources) == 1 else sources}}
    return {"Version": "2012-10-17", "Statement": [trust]}


def guarded(trust: Mapping[str, Any]) -> bool:
    """Whether every statement of ``trust`` that lets an AWS service assume the role names the source account."""
    for statement in trust.get("Statement", []):
        if statement.get("Effect") != "Allow" or "Service" not in statement.get("Principal", {}):
            continue
        conditions = statement.get("Condition", {})
        keys = {key.lower() for condition in conditions.values() for key in condition}
        if not keys & {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}:
            return False
    return True


def service_principals(trust: Mapping[str, Any]) -> list[str]:
    """The AWS service principals ``trust`` lets assume the role."""
    found: list[str] = []
    for statement in trust.get("Statement", []):
        principal = statement.get("Principal", {}).get("Service", []) if isinstance(statement.get("Principal"), Mapping) else []
        found += [principal] if isinstance(principal, str) else list(principal)
    return sorted(set(found))


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
        # The props, resolved now: a plan made before a resource its policies name existed (a key made in the
        # same up) holds a placeholder for it in ``changes``.
        if "trust" in changes:
            iam.update_assume_role_policy(RoleName=found.id, PolicyDocument=json.dumps(props["trust"]))
        if "managed" in changes:
            managed = props.get("managed", [])
            for arn in sorted(set(managed) - set(found.raw["Managed"])):
                iam.attach_role_policy(RoleName=found.id, PolicyArn=arn)
            for arn in sorted(set(found.raw["Managed"]) - set(managed)):
                iam.detach_role_policy(RoleName=found.id, PolicyArn=arn)
        if "inline" in changes:
            inline = props.get("inline", {})
            for name, document in inline.items():
                if found.raw["Inline"].get(name) != document:
                    iam.put_role_policy(RoleName=found.id, PolicyName=name, PolicyDocument=json.dumps(document))
            for name in set(found.raw["Inline"]) - set(inline):
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
    operations = {"associate": ("logs", "AssociateKmsKey"), "disassociate": ("logs", "DisassociateKmsKey")}

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
        return changed({"retention_days": found.raw.get("retentionInDays"), "kms_key": found.raw.get("kmsKeyId")},
                       {"retention_days": props["retention_days"], "kms_key": props.get("kms_key")})

    def needs(self, action: str, changes: Mapping[str, Any]) -> tuple[str, str] | None:
        # A log group takes its key with AssociateKmsKey and gives it back with DisassociateKmsKey
        # (Amazon CloudWatch Logs API reference), which an emulator may lack; retention changes do not need them.
        if action == "update" and "kms_key" in changes:
            return ("logs", "AssociateKmsKey" if changes["kms_key"] else "DisassociateKmsKey")
        return None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        create: dict[str, Any] = dict(logGroupName=desired.name, tags=dict(tags))
        if props.get("kms_key"):  # without one, CloudWatch Logs encrypts the group with its own key
            create["kmsKeyId"] = props["kms_key"]
        return {"create_log_group": create,
                "put_retention_policy": dict(logGroupName=desired.name, retentionInDays=props["retention_days"])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        logs = ctx.client("logs")
        request = self.request(ctx.spec, desired, props, tags)
        logs.create_log_group(**request["create_log_group"])
        logs.put_retention_policy(**request["put_retention_policy"])
        return Found(self.name, desired.key, desired.name, dict(tags),
                     {"logGroupName": desired.name, "retentionInDays": props["retention_days"],
                      "kmsKeyId": props.get("kms_key")})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "logs", found.id, tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        logs = ctx.client("logs")
        if "retention_days" in changes:
            logs.put_retention_policy(logGroupName=found.id, retentionInDays=changes["retention_days"])
        if "kms_key" in changes:  # data written before stays readable: CloudWatch Logs keeps what encrypted it
            if props.get("kms_key"):
                logs.associate_kms_key(logGroupName=found.id, kmsKeyId=props["kms_key"])
            else:
                logs.disassociate_kms_key(logGroupName=found.id)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("logs").delete_log_group, ["ResourceNotFoundException"], logGroupName=found.id)
        return None

    def describe(self, found: Found) -> str:
        key = found.raw.get("kmsKeyId")
        return f"retention {found.raw.get('retentionInDays')} days, " + (
            f"KMS key {key.rsplit('/', 1)[-1]}" if key else "CloudWatch Logs' own key")


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


def customer_key(spec: Spec) -> Ref | None:
    """The ARN of the environment's customer-managed KMS key (made with the network), when the spec asks for one;
    None: the services' own keys are used."""
    return Ref(KMS_KEY.step, KMS_KEY.key) if spec.security.kms_key else None


#: All four settings of S3 Block Public Access on (FSBP S3.8).
PRIVATE = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def bucket_encryption(key: str | None) -> dict[str, Any]:
    """A bucket's default encryption: SSE-KMS with ``key`` and an S3 Bucket Key (one KMS request per bucket key
    period, not per object: Amazon S3 User Guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys"),
    or SSE-S3 without one."""
    default: dict[str, Any] = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if key else {"SSEAlgorithm": "AES256"}
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]}


def tls_only(bucket_arn: Any) -> dict[str, Any]:
    """The statement refusing every request to the bucket ``bucket_arn`` that does not come over TLS (FSBP S3.5:
    ``aws:SecureTransport`` false; Amazon S3 User Guide, "Security best practices for Amazon S3").

    Everyone is ``{"AWS": "*"}``, the form the AWS CDK's ``enforceSSL`` writes (aws-cdk-lib aws_s3 Bucket,
    AnyPrincipal); moto takes a bare ``"*"`` Deny as refusing every request, whatever its condition."""
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": [bucket_arn, objects_of(bucket_arn)], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def objects_of(bucket_arn: Any) -> Any:
    """The ARN of every object of the bucket ``bucket_arn`` (an ARN, or a template's expression of one)."""
    return f"{bucket_arn}/*" if isinstance(bucket_arn, str) else {"Fn::Join": ["", [bucket_arn, "/*"]]}


def _read(call: Callable[..., Any], *path: str, **kwargs: Any) -> Any:
    """``call(**kwargs)`` followed down ``path``, or None when S3 answers that the bucket has no such setting."""
    try:
        answer = call(**kwargs)
    except botocore.exceptions.ClientError:
        return None
    for step in path:
        answer = answer[step]
    return answer


class Bucket(Kind):
    """A private S3 bucket pointapp names after the account and region (bucket names are global): versioned or
    not, encrypted by default (SSE-S3, or SSE-KMS with a key), with a lifecycle. A subclass names its bucket
    (:meth:`bucket_name`); its policy is a part of it (:class:`BucketPolicy`)."""

    name = "s3-bucket"
    service = "s3"
    #: Whether discovery reads if the bucket holds anything (what :meth:`keeps` of a subclass may need).
    counts_objects = False

    def bucket_name(self, ctx: StepContext, spec: Spec) -> str:
        raise NotImplementedError

    def bucket_tags(self, ctx: StepContext, spec: Spec) -> dict[str, str]:
        """The bucket's tags ({} when it does not exist or is someone else's), read once."""
        name = self.bucket_name(ctx, spec)

        def read() -> dict[str, str]:
            # AccessDenied: the name is taken by someone else's bucket; creating it will say so
            answer = ignore_codes(ctx.client("s3").get_bucket_tagging, [
                "NoSuchBucket", "NoSuchTagSet", "NoSuchTagSetError", "404", "AccessDenied"], Bucket=name)
            return from_aws_tags(answer["TagSet"]) if answer is not None else {}

        return dict(ctx.read_once(("bucket-tags", name), lambda: tags_of(ctx, Arn("s3", name, "", "").on(ctx), read)))

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        name, tags = self.bucket_name(ctx, spec), self.bucket_tags(ctx, spec)  # the tags first: the listing many steps wait for
        if not is_owned(tags, spec, step):
            return []
        s3 = ctx.client("s3")

        def policy() -> Any:
            text = _read(s3.get_bucket_policy, "Policy", Bucket=name)
            return json.loads(text) if text else None

        # Its settings are reads of their own: side by side.
        reads: list[Callable[[], Any]] = [
            lambda: s3.get_bucket_versioning(Bucket=name).get("Status"),
            lambda: _read(s3.get_public_access_block, "PublicAccessBlockConfiguration", Bucket=name) or {},
            lambda: _read(s3.get_bucket_encryption, "ServerSideEncryptionConfiguration", "Rules", Bucket=name) or [],
            lambda: _read(s3.get_bucket_lifecycle_configuration, "Rules", Bucket=name) or [],
            policy, lambda: s3.list_objects_v2(Bucket=name, MaxKeys=1).get("KeyCount", 0) if self.counts_objects else 0]
        versioning, block, encryption, lifecycle, bucket_policy, objects = map_side_by_side(lambda read: read(), reads)
        default = (encryption or [{}])[0].get("ApplyServerSideEncryptionByDefault", {})
        raw: dict[str, Any] = {"Name": name, "Arn": Arn("s3", name, "", "").on(ctx), "Versioning": versioning,
                               "PublicAccessBlock": dict(block), "Encryption": default.get("SSEAlgorithm"),
                               "KmsKey": default.get("KMSMasterKeyID"), "Lifecycle": list(lifecycle),
                               "Policy": bucket_policy, "HoldsObjects": bool(objects)}
        return [Found(self.name, tags[KEY], name, tags, raw)]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes = Differences()
        if props["versioning"] and raw.get("Versioning") != "Enabled":
            changes.add("versioning", raw.get("Versioning"), "Enabled")
        algorithm = "aws:kms" if props.get("kms_key") else "AES256"
        if raw.get("Encryption") != algorithm or (props.get("kms_key") and raw.get("KmsKey") != props["kms_key"]):
            changes.add("encryption", raw.get("KmsKey") or raw.get("Encryption"), props.get("kms_key") or algorithm)
        if raw.get("PublicAccessBlock") != PRIVATE:
            changes.add("public_access_block", "not all blocked", "all blocked")
        rules = {rule.get("ID"): rule for rule in raw.get("Lifecycle", [])}
        if any({k: rules.get(rule["ID"], {}).get(k) for k in rule} != rule for rule in props["lifecycle"]):
            changes.add("lifecycle", sorted(str(rule_id) for rule_id in rules), [rule["ID"] for rule in props["lifecycle"]])
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        name = props["bucket"]
        args: dict[str, Any] = {"Bucket": name, "ObjectOwnership": "BucketOwnerEnforced"}
        if props["region"] != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": props["region"]}
        request: Request = {
            "create_bucket": args, "put_bucket_tagging": dict(Bucket=name, Tagging={"TagSet": aws_tags(tags)}),
            "put_public_access_block": dict(Bucket=name, PublicAccessBlockConfiguration=PRIVATE),
            "put_bucket_encryption": dict(Bucket=name, ServerSideEncryptionConfiguration=bucket_encryption(props.get("kms_key")))}
        if props["versioning"]:
            request["put_bucket_versioning"] = dict(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        request["put_bucket_lifecycle_configuration"] = dict(
            Bucket=name, LifecycleConfiguration={"Rules": [dict(rule) for rule in props["lifecycle"]]})
        return request

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        s3 = ctx.client("s3")
        request = self.request(ctx.spec, desired, props, tags)
        ignore_codes(s3.create_bucket, ["BucketAlreadyOwnedByYou"], **request.pop("create_bucket"))
        for operation, args in request.items():  # tags, public access block, encryption, versioning, lifecycle
            getattr(s3, operation)(**args)
        name = props["bucket"]
        return Found(self.name, desired.key, name, dict(tags), {"Name": name, "Arn": Arn("s3", name, "", "").on(ctx)})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        # PutBucketTagging replaces the bucket's whole tag set: the tags it has stay in it.
        ctx.client("s3").put_bucket_tagging(Bucket=found.id, Tagging={"TagSet": aws_tags({**found.tags, **tags})})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        request = self.request(ctx.spec, desired, props, found.tags)
        s3 = ctx.client("s3")
        for change, operation in (("public_access_block", "put_public_access_block"), ("encryption", "put_bucket_encryption"),
                                  ("versioning", "put_bucket_versioning"), ("lifecycle", "put_bucket_lifecycle_configuration")):
            if change in changes:
                getattr(s3, operation)(**request[operation])

    def empty(self, ctx: StepContext, found: Found) -> None:
        """Delete every object version and delete marker in the bucket."""
        s3 = ctx.client("s3")
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=found.id):
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if doomed:
                s3.delete_objects(Bucket=found.id, Delete={"Objects": doomed, "Quiet": True})

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        """Empty the bucket and delete it."""
        self.empty(ctx, found)
        ignore_codes(ctx.client("s3").delete_bucket, ["NoSuchBucket"], Bucket=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        private = "private" if raw.get("PublicAccessBlock") == PRIVATE else "NOT private"
        encryption = f"SSE-KMS {str(raw['KmsKey']).rsplit('/', 1)[-1]}" if raw.get("KmsKey") else raw.get("Encryption")
        return (f"versioning {raw.get('Versioning')}, encryption {encryption}, {private}, "
                f"{len(raw.get('Lifecycle') or [])} lifecycle rule(s)")


def bucket_policy_runtime(ctx: StepContext) -> dict[str, Any]:
    """What a bucket policy takes from the target: whether it evaluates conditions (the emulator does not, and
    the TLS-only statement would then refuse everything: it is left out there, and the step says so)."""
    gap = ctx.lacks("s3", "PolicyConditions")
    return {"tls_only": gap is None, "tls_only_gap": gap or ""}


def bucket_policy_props(bucket: Ref, bucket_arn: Ref, statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The props of a :class:`BucketPolicy`: the bucket, its ARN, its own statements, and the target's runtime values."""
    return {"bucket": bucket, "bucket_arn": bucket_arn, "statements": statements,
            "tls_only": Ref("runtime", "tls_only"), "tls_only_gap": Ref("runtime", "tls_only_gap")}


class BucketPolicy(Kind):
    """The policy of a bucket this step makes: a part of the bucket (``parent``), the key ``<bucket key>/policy``.
    Its statements are the props' ``statements``; the one refusing plain HTTP (:func:`tls_only`) comes first
    (``tls_only`` in the props, a runtime value: see :func:`bucket_policy_runtime`)."""

    name = "s3-bucket-policy"
    service = "s3"
    tagged = False
    finds_after = ("s3-bucket",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        # Found with every bucket, a policy or none: one removed by hand is put back by an update
        return [Found(self.name, f"{bucket.key}/policy", bucket.id, {"Name": bucket.name}, {"Policy": bucket.raw["Policy"]},
                      parent=bucket.key)
                for bucket in known.values() if bucket.kind == Bucket.name and not bucket.owner]

    @staticmethod
    def document(props: Mapping[str, Any]) -> dict[str, Any]:
        return policy(*([tls_only(props["bucket_arn"])] if props["tls_only"] else []), *props["statements"])

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        wanted = json.loads(json.dumps(self.document(props)))
        current = found.raw.get("Policy") or policy()
        return {"policy": "as specified"} if current != wanted else {}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        if not self.document(props)["Statement"]:  # S3 refuses a policy without statements (MalformedPolicy)
            return {}
        return {"put_bucket_policy": dict(Bucket=props["bucket"], Policy=json.dumps(self.document(props)))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        if not props["tls_only"]:
            ctx.say(f"    {desired.name}: no statement refusing plain HTTP here: {props['tls_only_gap']}")
        request = self.request(ctx.spec, desired, props, tags)
        if request:
            ctx.client("s3").put_bucket_policy(**request["put_bucket_policy"])
        else:
            ignore_codes(ctx.client("s3").delete_bucket_policy, ["NoSuchBucketPolicy", "NoSuchBucket"], Bucket=props["bucket"])
        return Found(self.name, desired.key, props["bucket"], dict(tags), {"Policy": self.document(props)},
                     parent=desired.parent)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        self.create(ctx, desired, props, found.tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # goes with its bucket

    def describe(self, found: Found) -> str:
        statements = (found.raw.get("Policy") or {}).get("Statement", [])
        return ", ".join(str(s.get("Sid", s.get("Effect"))) for s in statements)
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
