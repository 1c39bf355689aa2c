"""Ownership tags: how pointapp marks, finds and recognises the resources it owns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pointapp.context import StepContext
from pointapp.spec import Spec

ENVIRONMENT = "pointapp:environment"
STEP = "pointapp:step"
KEY = "pointapp:key"


def ownership_tags(spec: Spec, step: str, key: str, name: str) -> dict[str, str]:
    """Every tag a resource of ``step`` carries: the spec's tags, its Name and the ownership tags."""
    return {**spec.tags, "Name": name, ENVIRONMENT: spec.owner, STEP: step, KEY: key}


def aws_tags(tags: Mapping[str, str], lower: bool = False) -> list[dict[str, str]]:
    """Tags in AWS's list form, ``[{"Key": ..., "Value": ...}]``; ``lower``: ``key``/``value`` as ECS and
    CodePipeline write them."""
    key, value = ("key", "value") if lower else ("Key", "Value")
    return [{key: k, value: v} for k, v in tags.items()]


def from_aws_tags(tags: Iterable[Mapping[str, str]] | None, lower: bool = False) -> dict[str, str]:
    """Tags from AWS's list form back to a dict; ``lower`` as :func:`aws_tags`."""
    key, value = ("key", "value") if lower else ("Key", "Value")
    return {tag[key]: tag[value] for tag in tags or ()}


@dataclass(frozen=True)
class Tagging:
    """How a service sets tags on an existing resource: its operation, the argument naming the resource
    (a list of one when ``several``), the argument holding the tags and their form: ``list`` (``Key`` and
    ``Value``), ``lower`` (``key`` and ``value``) or ``map`` (a plain mapping)."""

    operation: str
    resource: str
    argument: str = "Tags"
    form: str = "list"
    several: bool = False


#: Each service's tagging call. Each adds or overwrites the tags it names and leaves the others (the
#: services' API references: EC2 CreateTags, ELB AddTags, RDS and ElastiCache AddTagsToResource, the
#: TagResource of the others, CloudWatch Logs TagLogGroup).
TAGGING: dict[str, Tagging] = {
    "ec2": Tagging("create_tags", "Resources", several=True),
    "elbv2": Tagging("add_tags", "ResourceArns", several=True),
    **dict.fromkeys(("rds", "elasticache"), Tagging("add_tags_to_resource", "ResourceName")),
    **dict.fromkeys(("sesv2", "codedeploy"), Tagging("tag_resource", "ResourceArn")),
    "events": Tagging("tag_resource", "ResourceARN"),
    "secretsmanager": Tagging("tag_resource", "SecretId"),
    **dict.fromkeys(("ecs", "codepipeline"), Tagging("tag_resource", "resourceArn", "tags", "lower")),
    "ecr": Tagging("tag_resource", "resourceArn", "tags"),
    "amplify": Tagging("tag_resource", "resourceArn", "tags", "map"),
    "backup": Tagging("tag_resource", "ResourceArn", "Tags", "map"),
    "logs": Tagging("tag_log_group", "logGroupName", "tags", "map"),
}


def add_tags(ctx: StepContext, service: str, resource: str, tags: Mapping[str, str]) -> None:
    """Set ``tags`` on the existing ``resource`` (its id, name or ARN, as ``service``'s tagging call takes
    it) with that call (:data:`TAGGING`); tags others added stay."""
    how = TAGGING[service]
    values: Any = dict(tags) if how.form == "map" else aws_tags(tags, lower=how.form == "lower")
    getattr(ctx.client(service), how.operation)(**{how.resource: [resource] if how.several else resource,
                                                   how.argument: values})


def tag_specifications(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ``TagSpecifications`` argument that tags a resource in its create call."""
    return [{"ResourceType": resource_type, "Tags": aws_tags(tags)}]


def owner_filters(spec: Spec, step: str) -> list[dict[str, Any]]:
    """EC2 describe filters that match only the resources ``step`` owns in this environment."""
    return [{"Name": f"tag:{ENVIRONMENT}", "Values": [spec.owner]}, {"Name": f"tag:{STEP}", "Values": [step]}]


def is_owned(tags: Mapping[str, str], spec: Spec, step: str) -> bool:
    return tags.get(ENVIRONMENT) == spec.owner and tags.get(STEP) == step and bool(tags.get(KEY))


def foreign_owner(tags: Mapping[str, str], spec: Spec) -> str:
    """The other pointapp environment whose ownership tags ``tags`` carry, or "" (ours, or nobody's)."""
    owner = tags.get(ENVIRONMENT, "")
    return owner if owner and owner != spec.owner else ""


def missing_tags(current: Mapping[str, str], wanted: Mapping[str, str]) -> dict[str, str]:
    """The wanted tags that are absent or differ (tags others added are left alone)."""
    return {key: value for key, value in wanted.items() if current.get(key) != value}
