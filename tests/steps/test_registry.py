from __future__ import annotations

import json

import boto3

import pointapp
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.steps.helpers import down_leaves_nothing, up_is_idempotent

NAME = "point-app-prod/api"
MEDIA = "application/vnd.docker.distribution.manifest.v2+json"


def manifest(digest: str) -> str:
    return json.dumps({"schemaVersion": 2, "mediaType": MEDIA, "config": {"digest": f"sha256:{digest * 64}"},
                       "layers": []})


def ecr():  # type: ignore[no-untyped-def]
    return boto3.client("ecr", region_name=REGION)


def test_repository_settings(ctx: Context) -> None:
    pointapp.up(ctx, only="registry")
    repository = ecr().describe_repositories(repositoryNames=[NAME])["repositories"][0]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repository["encryptionConfiguration"]["encryptionType"] == "AES256"
    policy = json.loads(ecr().get_lifecycle_policy(repositoryName=NAME)["lifecyclePolicyText"])
    selections = [rule["selection"] for rule in policy["rules"]]
    assert selections[0]["tagStatus"] == "untagged"
    assert selections[1] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}
    tags = {t["Key"]: t["Value"] for t in ecr().list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]}
    assert tags["pointapp:environment"] == "point-app-prod" and tags["pointapp:step"] == "registry"


def test_latest_is_the_only_mutable_tag(ctx: Context) -> None:
    pointapp.up(ctx, only="registry")
    repository = ecr().describe_repositories(repositoryNames=[NAME])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repository["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]


def test_idempotent_drift_and_down(ctx: Context) -> None:
    pointapp.up(ctx, only="registry")
    up_is_idempotent(ctx, "registry")
    ecr().put_image_scanning_configuration(repositoryName=NAME, imageScanningConfiguration={"scanOnPush": False})
    planned = pointapp.plan(ctx, only="registry")
    assert [c.detail for c in planned.changes] == ["scan_on_push: false -> true"]  # what it is now, and will be
    pointapp.apply(ctx, planned)
    up_is_idempotent(ctx, "registry")
    assert down_leaves_nothing(ctx, "registry") == []


def test_down_keeps_a_repository_with_images_unless_told(ctx: Context) -> None:
    pointapp.up(ctx, only="registry")
    ecr().put_image(repositoryName=NAME, imageManifest=manifest("d"), imageTag="v1")
    outcome = pointapp.down(ctx, only="registry")
    assert outcome.warnings and "still holds images" in outcome.warnings[0]
    assert ecr().describe_repositories(repositoryNames=[NAME])["repositories"]
    forced = make_context(load_spec("prod", {"registry": {"delete_images": True}}))
    assert pointapp.down(forced, only="registry").warnings == []
    assert NAME not in [r["repositoryName"] for r in ecr().describe_repositories()["repositories"]]


def test_an_untagged_look_alike_is_left_alone(ctx: Context) -> None:
    ecr().create_repository(repositoryName=NAME)
    planned = pointapp.plan(ctx, only="registry")
    assert [c.action for c in planned.changes] == ["create"]
    assert pointapp.plan_destroy(ctx, only="registry").empty
