"""The ``registry`` step: the ECR repository that holds the API's container images.

CI pushes every build twice: with the commit SHA (never overwritten) and as ``latest`` (which moves, and
which CodePipeline watches). So tags are immutable except ``latest``. Images are scanned on push and
encrypted at rest; a lifecycle policy expires untagged images and keeps the last N.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from pointapp.concurrency import map_side_by_side
from pointapp.context import StepContext
from pointapp.diffs import changed
from pointapp.kinds import tags_of
from pointapp.names import MOVING_TAG, repository_name
from pointapp.resources import Desired, Found, Kind, Request, ResourceStep, client_error_code
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags, is_owned

NAME = "registry"
#: The tags the repository's immutability does not cover: the one CI moves (ECR API reference,
#: ImageTagMutabilityExclusionFilter: filterType WILDCARD, filter up to 128 characters).
EXCLUDED = [{"filterType": "WILDCARD", "filter": MOVING_TAG}]


def lifecycle_policy(keep: int) -> dict[str, Any]:
    """Expire untagged images after a day; keep the newest ``keep`` images of any tag."""
    return {"rules": [
        {"rulePriority": 1, "description": "Expire untagged images after one day",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": f"Keep the last {keep} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
         "action": {"type": "expire"}},
    ]}


class Repository(Kind):
    name = "ecr-repository"
    service = "ecr"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        ecr = ctx.client("ecr")
        repositories = [repository for page in ecr.get_paginator("describe_repositories").paginate()
                        for repository in page["repositories"] if repository["repositoryName"].startswith(f"{spec.owner}/")]

        def read(repository: dict[str, Any]) -> Found | None:  # its tags and lifecycle policy: per repository
            arn = repository["repositoryArn"]
            tags = tags_of(ctx, arn, lambda: from_aws_tags(ecr.list_tags_for_resource(resourceArn=arn)["tags"]))
            if not is_owned(tags, spec, step):
                return None
            raw = dict(repository)
            try:
                raw["lifecyclePolicy"] = json.loads(ecr.get_lifecycle_policy(
                    repositoryName=repository["repositoryName"])["lifecyclePolicyText"])
            except botocore.exceptions.ClientError as error:
                if client_error_code(error) != "LifecyclePolicyNotFoundException":
                    raise
                raw["lifecyclePolicy"] = None
            return Found(self.name, tags[KEY], repository["repositoryName"], tags, raw)

        return [found for found in map_side_by_side(read, repositories) if found is not None]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        current = {
            "scan_on_push": raw.get("imageScanningConfiguration", {}).get("scanOnPush", False),
            "tag_mutability": raw.get("imageTagMutability"),
            "lifecycle_policy": raw.get("lifecyclePolicy"),
        }
        return changed(current, {key: props[key] for key in current})

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        return None  # a repository is never replaced: that would delete its images

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_repository": dict(
            repositoryName=desired.name, tags=aws_tags(tags),
            imageTagMutability=props["tag_mutability"], imageTagMutabilityExclusionFilters=EXCLUDED,
            imageScanningConfiguration={"scanOnPush": props["scan_on_push"]},
            encryptionConfiguration={"encryptionType": "AES256"}),
            "put_lifecycle_policy": dict(repositoryName=desired.name,
                                         lifecyclePolicyText=json.dumps(props["lifecycle_policy"]))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ecr = ctx.client("ecr")
        request = self.request(ctx.spec, desired, props, tags)
        repository = ecr.create_repository(**request["create_repository"])["repository"]
        ecr.put_lifecycle_policy(**request["put_lifecycle_policy"])
        return Found(self.name, desired.key, desired.name, dict(tags), {**repository, "lifecyclePolicy": props["lifecycle_policy"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "ecr", found.raw["repositoryArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ecr = ctx.client("ecr")
        if "scan_on_push" in changes:
            ecr.put_image_scanning_configuration(repositoryName=found.id,
                                                 imageScanningConfiguration={"scanOnPush": changes["scan_on_push"]})
        if "tag_mutability" in changes:
            ecr.put_image_tag_mutability(
                repositoryName=found.id, imageTagMutability=changes["tag_mutability"],
                imageTagMutabilityExclusionFilters=EXCLUDED)
        if "lifecycle_policy" in changes:
            ecr.put_lifecycle_policy(repositoryName=found.id, lifecyclePolicyText=json.dumps(changes["lifecycle_policy"]))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ecr = ctx.client("ecr")
        images = ecr.list_images(repositoryName=found.id, maxResults=1)["imageIds"]
        if images and not ctx.spec.registry.delete_images:
            return ("kept: it still holds images; delete them or set registry.delete_images: true, "
                    "then run down again")
        ecr.delete_repository(repositoryName=found.id, force=bool(images))
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        scan = "scan on push" if raw.get("imageScanningConfiguration", {}).get("scanOnPush") else "no scan"
        return f"{raw.get('repositoryUri')} ({raw.get('imageTagMutability')}, {scan})"


def desired(spec: Spec) -> list[Desired]:
    settings = spec.registry
    return [Desired("ecr-repository", "repository", repository_name(spec), {
        "scan_on_push": settings.scan_on_push,
        "tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
        "lifecycle_policy": lifecycle_policy(settings.keep_images),
    }, f"scan on push, AES256, tags immutable except '{MOVING_TAG}', keep the last {settings.keep_images} images")]


STEP = ResourceStep(NAME, [Repository()], desired)
