"""Ownership tags: how pointapp marks, finds and recognises the resources it owns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pointapp.spec import Spec

ENVIRONMENT = "pointapp:environment"
STEP = "pointapp:step"
KEY = "pointapp:key"


def ownership_tags(spec: Spec, step: str, key: str, name: str) -> dict[str, str]:
    """Every tag a resource of ``step`` carries: the spec's tags, its Name and the ownership tags."""
    return {**spec.tags, "Name": name, ENVIRONMENT: spec.owner, STEP: step, KEY: key}


def as_aws_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def from_aws_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or ()}


def from_lower_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """Tags as ECS and CodePipeline write them, with lower-case ``key`` and ``value``."""
    return {tag["key"]: tag["value"] for tag in tags or ()}


def tag_specifications(resource_type: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ``TagSpecifications`` argument that tags a resource in its create call."""
    return [{"ResourceType": resource_type, "Tags": as_aws_tags(tags)}]


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
