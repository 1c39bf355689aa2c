"""Releases on moto, the generated artifacts, and the real-AWS paths moto lacks, checked with Stubber."""

from __future__ import annotations

import datetime
import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

import pointapp
from pointapp import release
from pointapp.errors import PointappError, SpecError
from pointapp.resources import Found
from pointapp.spec import load_spec
from pointapp.steps import delivery
from pointapp.tags import ownership_tags
from pointapp.target import Context
from tests.conftest import REGION, aws_behaviour, aws_context, aws_like_context, aws_like_session, make_context, stub
from tests.steps.helpers import as_ecs_describes, register_as_a_release, up_is_idempotent

STEPS = "network,endpoints,registry,database,cache,mail,service,delivery"
IMAGE = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:3f2c1a9"
FAMILY = "point-app-prod-api"


@pytest.fixture
def built(ctx: Context) -> Context:
    pointapp.up(ctx, only=STEPS)
    return ctx


def test_deploy_registers_a_revision_and_a_deployment_that_references_it(built: Context) -> None:
    before = len(built.calls)
    deployment = release.deploy(built, IMAGE)
    operations = [c.operation for c in built.calls[before:] if c.mutating]
    assert operations == ["RegisterTaskDefinition", "CreateDeployment"]  # never UpdateService
    ecs = boto3.client("ecs", region_name=REGION)
    revision = ecs.describe_task_definition(taskDefinition="point-app-prod-api")["taskDefinition"]
    assert revision["revision"] == 2 and revision["containerDefinitions"][0]["image"] == IMAGE
    assert deployment.task_definition == revision["taskDefinitionArn"]
    info = boto3.client("codedeploy", region_name=REGION).get_deployment(deploymentId=deployment.id)["deploymentInfo"]
    content = json.loads(info["revision"]["appSpecContent"]["content"])
    target = content["Resources"][0]["TargetService"]["Properties"]
    assert target["TaskDefinition"] == revision["taskDefinitionArn"]
    assert target["LoadBalancerInfo"] == {"ContainerName": "api", "ContainerPort": 80}
    assert release.status(built).id == deployment.id
    assert pointapp.plan(built, only="service").empty  # a release is not drift


def test_wait_on_the_emulator_says_it_cannot_follow(built: Context) -> None:
    release.deploy(built, IMAGE, wait=True)
    assert any("never runs them" in line for line in built.lines)  # type: ignore[attr-defined]


def test_deploy_before_delivery_is_a_clear_error(ctx: Context) -> None:
    with pytest.raises(PointappError, match=r"run `pointapp up --only delivery` first"):
        release.deploy(ctx, IMAGE)
    assert ctx.mutating_calls == []


@pytest.mark.parametrize("image", ["", "nginx", "UPPER/case:tag", "repo:tag with space", "repo@sha256:short",
                                   "http://registry/repo:tag"])
def test_bad_image_references(image: str) -> None:
    with pytest.raises(SpecError, match="--image: .* is not an image reference"):
        release.check_image(image)


@pytest.mark.parametrize("image", [IMAGE, "nginx:1.27", "localhost:5000/team/api:v1", "repo@sha256:" + "a" * 64])
def test_good_image_references(image: str) -> None:
    assert release.check_image(image) == image


def test_export_delivery_artifacts(ctx: Context, tmp_path: Path) -> None:
    spec = load_spec("prod", {"delivery": {"github_repository": "acme/point-app"}})
    exporting = make_context(spec)
    paths = release.export_delivery(exporting, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == [
        ".github/workflows/release-prod.yml", "appspec.yaml", "artifacts.zip", "taskdef.json"]
    taskdef = json.loads((tmp_path / "taskdef.json").read_text())
    assert taskdef["containerDefinitions"][0]["image"] == "<IMAGE1_NAME>"
    assert taskdef["networkMode"] == "awsvpc" and taskdef["family"] == "point-app-prod-api"
    assert taskdef["executionRoleArn"].endswith(":role/pointapp/point-app-prod/point-app-prod-task-execution")
    assert {t["key"]: t["value"] for t in taskdef["tags"]} == ownership_tags(spec, "service", "taskdef", FAMILY)
    appspec = yaml.safe_load((tmp_path / "appspec.yaml").read_text())
    properties = appspec["Resources"][0]["TargetService"]["Properties"]
    assert properties["TaskDefinition"] == "<TASK_DEFINITION>"
    assert appspec["Resources"][0]["TargetService"]["Type"] == "AWS::ECS::Service"
    workflow = yaml.safe_load((tmp_path / ".github/workflows/release-prod.yml").read_text())
    assert workflow["permissions"] == {}  # nothing for the workflow; its one job gets what it needs
    assert workflow["jobs"]["image"]["permissions"] == {"id-token": "write", "contents": "read"}
    assert workflow["on"]["push"]["branches"] == ["main"]  # quoted, so YAML 1.1 does not read it as True
    steps = workflow["jobs"]["image"]["steps"]
    assert steps[0]["with"] == {"persist-credentials": False}
    credentials = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
    assert credentials["with"]["role-to-assume"].endswith("/point-app-prod-github-release")
    script = next(s for s in steps if "run" in s)["run"]
    assert script.index(':$SHA"') < script.index(':latest"', script.index("docker push"))
    assert "aws_secret_access_key" not in (tmp_path / ".github/workflows/release-prod.yml").read_text().lower()


def _zizmor(workflow: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """zizmor (pinned in the test extras) on ``workflow``, offline, with every audit (the pedantic persona)."""
    zizmor = Path(sys.executable).parent / "zizmor"
    return subprocess.run([str(zizmor), "--offline", "--persona", "pedantic", "--format", "plain", "--config",
                           str(config), str(workflow)], capture_output=True, text=True, timeout=60)


def test_the_generated_workflow_passes_zizmor_with_only_the_unverified_tags_excepted(tmp_path: Path) -> None:
    from pointapp import artifacts

    workflow = tmp_path / ".github" / "workflows" / "release-prod.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(artifacts.workflow_text(load_spec("prod"), "arn:aws:iam::123456789012:role/r", REGION))
    for action in artifacts.ACTIONS:  # a pinned action: a full hash, its release in a comment, its source in the code
        if action.commit:
            assert re.fullmatch(r"[0-9a-f]{40}", action.commit) and action.source
            assert f"uses: {action.repository}@{action.commit} # {action.version}\n" in workflow.read_text()
    policies = {a.repository: "ref-pin" for a in artifacts.TAGGED}
    excepted = tmp_path / "zizmor.yml"
    excepted.write_text(yaml.safe_dump({"rules": {"unpinned-uses": {"config": {"policies": {**policies, "*": "hash-pin"}}}}}))
    result = _zizmor(workflow, excepted)
    assert result.returncode == 0, result.stdout + result.stderr
    strict = tmp_path / "strict.yml"
    strict.write_text(yaml.safe_dump({"rules": {"unpinned-uses": {"config": {"policies": {"*": "hash-pin"}}}}}))
    flagged = _zizmor(workflow, strict).stdout
    assert sorted(re.findall(r"uses: ([\w/-]+)@", flagged)) == sorted(policies)  # the tagged ones, and only they


def test_export_delivery_writes_the_zip_the_step_uploads(built: Context, tmp_path: Path) -> None:
    """The CloudFormation delivery template's pipeline reads release/artifacts.zip from its bucket: the
    exported zip is the one the delivery step uploads, and holds the very files written beside it."""
    import io
    import zipfile

    from pointapp.artifacts import ARTIFACTS_KEY

    bucket = delivery.bucket_name(built, built.spec)
    uploaded = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=ARTIFACTS_KEY)["Body"].read()
    release.export_delivery(built, tmp_path)
    exported = (tmp_path / "artifacts.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(exported)) as archive, zipfile.ZipFile(io.BytesIO(uploaded)) as step:
        assert sorted(archive.namelist()) == sorted(step.namelist()) == ["appspec.yaml", "taskdef.json"]
        for name in ("taskdef.json", "appspec.yaml"):
            assert archive.read(name) == step.read(name) == (tmp_path / name).read_bytes()
    assert exported == uploaded


# --- the real-AWS paths the emulator lacks, validated against botocore's service model -----------------


def test_delete_application_and_group_on_aws() -> None:
    ctx = aws_context()
    codedeploy = stub(ctx, "codedeploy")
    codedeploy.add_response("delete_deployment_group", {"hooksNotCleanedUp": []},
                            {"applicationName": "point-app-prod-api", "deploymentGroupName": "point-app-prod-api-blue-green"})
    codedeploy.add_response("delete_application", {}, {"applicationName": "point-app-prod-api"})
    assert delivery.DeploymentGroup().delete(ctx, Found("deployment-group", "deployment-group",
                                                        "point-app-prod-api-blue-green", {}, {})) is None
    assert delivery.Application().delete(ctx, Found("codedeploy-application", "application", "point-app-prod-api",
                                                    {}, {})) is None
    codedeploy.assert_no_pending_responses()


def test_the_emulator_says_what_it_skipped(built: Context) -> None:
    """A change the emulator lacks the call for is shown skipped, is no change for plan, up or the exit code."""
    ctx = make_context(load_spec("prod", {"delivery": {"deployment_config": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"}}))
    planned = pointapp.plan(ctx, only="delivery")
    (change,) = planned.changes
    assert (change.action, change.kind) == ("update", "deployment-group")
    assert "(skipped: the emulator does not implement codedeploy UpdateDeploymentGroup" in change.line()
    assert planned.empty and planned.summary().startswith("No changes")
    outcome = pointapp.apply(ctx, planned)
    assert outcome.applied == [] and outcome.skipped == [change]
    assert "changed 0" in outcome.summary() and "Skipped 1" in outcome.summary()
    assert ("codedeploy", "UpdateDeploymentGroup") not in [(c.service, c.operation) for c in ctx.calls]
    destroy = pointapp.plan_destroy(ctx, only="delivery")
    skipped = {c.kind: c.args["skip"] for c in destroy.changes if c.args.get("skip")}
    assert skipped == {
        "deployment-group": "the emulator does not implement codedeploy DeleteDeploymentGroup; on AWS pointapp "
                            "calls it here, and nothing was changed now",
        "codedeploy-application": "the emulator does not implement codedeploy DeleteApplication; on AWS pointapp "
                                  "calls it here, and nothing was changed now"}


def test_a_tag_update_beside_a_call_the_emulator_lacks_is_still_made(built: Context) -> None:
    ctx = make_context(load_spec("prod", {"tags": {"Team": "web"},
                                          "delivery": {"deployment_config": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"}}))
    # The new tag is pending on the steps the delivery needs too: the plan warns about them and is shown.
    group = [c for c in pointapp.plan(ctx, only="delivery", dependencies="warn").changes if c.kind == "deployment-group"]
    assert [(set(c.args["differences"]), bool(c.args["skip"])) for c in group] == [({"tags"}, False),
                                                                                  ({"deploymentConfigName"}, True)]


def _group_props() -> dict[str, Any]:
    return {"application": "point-app-prod-api", "role": "arn:aws:iam::123456789012:role/pointapp/x/codedeploy",
            "config": "CodeDeployDefault.ECSLinear10PercentEvery1Minutes", "termination_wait": 30,
            "cluster": "point-app-prod-cluster", "service": "point-app-prod-api",
            "target_groups": ["point-app-prod-tg-blue", "point-app-prod-tg-green"],
            "production_listener": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/a/b/c",
            "test_listener": "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/a/b/d"}


def test_update_deployment_group_on_aws() -> None:
    ctx = aws_context()
    codedeploy = stub(ctx, "codedeploy")
    props = _group_props()
    expected = {"applicationName": "point-app-prod-api", "currentDeploymentGroupName": "point-app-prod-api-blue-green",
                **delivery.deployment_group_request(props)}
    codedeploy.add_response("update_deployment_group", {"hooksNotCleanedUp": []}, expected)
    found = Found("deployment-group", "deployment-group", "point-app-prod-api-blue-green", {}, {})
    delivery.DeploymentGroup().update(ctx, None, props, found, {"deploymentConfigName": props["config"]})  # type: ignore[arg-type]
    codedeploy.assert_no_pending_responses()


def test_create_deployment_group_request_is_valid() -> None:
    ctx = aws_context()
    codedeploy = stub(ctx, "codedeploy")
    props = _group_props()
    codedeploy.add_response("create_deployment_group", {"deploymentGroupId": "id"}, {
        "applicationName": "point-app-prod-api", "deploymentGroupName": "g", "tags": ANY,
        **delivery.deployment_group_request(props)})
    desired = delivery.desired(ctx.spec)[-3]
    delivery.DeploymentGroup().create(ctx, desired.__class__(desired.kind, desired.key, "g", props), props, {"a": "b"})
    codedeploy.assert_no_pending_responses()


def _deployment(deployment_id: str, status: str, arn: str, minute: int) -> dict[str, Any]:
    content = json.dumps({"Resources": [{"TargetService": {"Properties": {"TaskDefinition": arn}}}]})
    return {"deploymentId": deployment_id, "status": status, "createTime": datetime.datetime(2026, 1, 1, 0, minute),
            "revision": {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}}


def _history(codedeploy: Stubber, deployments: list[dict[str, Any]]) -> None:
    ids = [d["deploymentId"] for d in deployments]
    codedeploy.add_response("list_deployments", {"deployments": ids},
                            {"applicationName": "point-app-prod-api", "deploymentGroupName": "point-app-prod-api-blue-green"})
    codedeploy.add_response("batch_get_deployments", {"deploymentsInfo": deployments}, {"deploymentIds": ids})


@pytest.fixture
def on_aws(mocked: None) -> Context:
    """A real-AWS context whose CodeDeploy client is stubbed (the step's presence check is tested above)."""
    return aws_context()


def test_rollback_stops_a_running_deployment_on_aws(on_aws: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release, "_require_delivery", lambda ctx: None)
    codedeploy = stub(on_aws, "codedeploy")
    _history(codedeploy, [_deployment("d-2", "InProgress", "arn:td:2", 2), _deployment("d-1", "Succeeded", "arn:td:1", 1)])
    codedeploy.add_response("stop_deployment", {"status": "Pending"}, {"deploymentId": "d-2", "autoRollbackEnabled": True})
    assert release.rollback(on_aws).startswith("stopped deployment d-2 with rollback")
    codedeploy.assert_no_pending_responses()


def test_rollback_redeploys_the_previous_revision_on_aws(on_aws: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(release, "_require_delivery", lambda ctx: None)
    codedeploy = stub(on_aws, "codedeploy")
    _history(codedeploy, [_deployment("d-2", "Succeeded", "arn:td:2", 2), _deployment("d-1", "Succeeded", "arn:td:1", 1)])
    codedeploy.add_response("create_deployment", {"deploymentId": "d-3"}, {
        "applicationName": "point-app-prod-api", "deploymentGroupName": "point-app-prod-api-blue-green",
        "description": "pointapp rollback to arn:td:1", "revision": {"revisionType": "AppSpecContent", "appSpecContent": {
            "content": json.dumps(release.artifacts.appspec(on_aws.spec, "arn:td:1"))}}})
    codedeploy.add_response("get_deployment", {"deploymentInfo": _deployment("d-3", "Created", "arn:td:1", 3)},
                            {"deploymentId": "d-3"})
    assert "d-3" in release.rollback(on_aws)
    codedeploy.assert_no_pending_responses()


def test_wait_follows_a_deployment_to_its_end_on_aws(on_aws: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    codedeploy = stub(on_aws, "codedeploy")
    for status in ("InProgress", "InProgress", "Succeeded"):
        codedeploy.add_response("get_deployment", {"deploymentInfo": _deployment("d-9", status, "arn:td:9", 9)},
                                {"deploymentId": "d-9"})
    monkeypatch.setattr(release.time, "sleep", lambda seconds: None)
    release.follow(on_aws, "d-9")
    assert [line for line in on_aws.lines if "d-9" in line] == [  # type: ignore[attr-defined]
        "  deployment d-9: InProgress after 0s", "  deployment d-9: Succeeded after 0s"]
    codedeploy.add_response("get_deployment", {"deploymentInfo": {**_deployment("d-8", "Failed", "arn:td:8", 8),
                                                                  "errorInformation": {"message": "health check"}}},
                            {"deploymentId": "d-8"})
    with pytest.raises(PointappError, match="deployment d-8 failed: health check"):
        release.follow(on_aws, "d-8")


# --- releases keep the environment in sync ----------------------------------------------------------------


def _revisions(status: str = "ACTIVE") -> list[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    return ecs.list_task_definitions(familyPrefix=FAMILY, status=status)["taskDefinitionArns"]


def release_as_the_pipeline_does(ctx: Context, directory: Path, image: str, client: Callable[[str], Any],
                                 as_stored: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> str:
    """What ``CodeDeployToECS`` does, with ``client(service)``: register ``taskdef.json`` with the image pushed
    (``as_stored`` turns a container into what ECS stores), then start a deployment of ``appspec.yaml`` naming
    the new revision. Returns the revision's ARN."""
    release.export_delivery(ctx, directory)
    taskdef = json.loads((directory / "taskdef.json").read_text().replace("<IMAGE1_NAME>", image))
    taskdef["containerDefinitions"] = [as_stored(c) for c in taskdef["containerDefinitions"]]
    arn: str = client("ecs").register_task_definition(**taskdef)["taskDefinition"]["taskDefinitionArn"]
    appspec = (directory / "appspec.yaml").read_text().replace("<TASK_DEFINITION>", arn)
    client("codedeploy").create_deployment(
        applicationName="point-app-prod-api", deploymentGroupName="point-app-prod-api-blue-green",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec}})
    return arn


def in_sync_after_a_release(ctx: Context, arn: str) -> None:
    """The release's revision is the service's: plan is empty, up changes nothing (the release's image stays),
    status says done, and down deregisters every revision of the family."""
    planned = pointapp.plan(ctx, only=STEPS)
    assert planned.empty, [c.line() for c in planned.changes]
    up_is_idempotent(ctx, STEPS)
    ecs = ctx.client("ecs")
    latest = ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]
    assert latest["taskDefinitionArn"] == arn and latest["containerDefinitions"][0]["image"] == IMAGE
    rows = {row[0]: row[1] for row in pointapp.engine.status(ctx).rows}
    assert rows["service"] == "done"
    pointapp.down(ctx, only="service")
    assert ecs.list_task_definitions(familyPrefix=FAMILY, status="ACTIVE")["taskDefinitionArns"] == []
    assert len(ecs.list_task_definitions(familyPrefix=FAMILY, status="INACTIVE")["taskDefinitionArns"]) == 2


def test_a_pipeline_release_keeps_the_environment_in_sync(built: Context, tmp_path: Path) -> None:
    client = functools.partial(boto3.client, region_name=REGION)
    in_sync_after_a_release(built, release_as_the_pipeline_does(built, tmp_path, IMAGE, client, as_ecs_describes))


def test_a_pipeline_release_keeps_the_environment_in_sync_with_the_aws_behaviour_layer(aws_like: str,
                                                                                        tmp_path: Path) -> None:
    ctx = aws_like_context(aws_like)
    pointapp.up(ctx, only=STEPS)
    arn = release_as_the_pipeline_does(ctx, tmp_path, IMAGE,
                                       functools.partial(aws_like_session().client, endpoint_url=aws_like))
    stored = ctx.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert stored["containerDefinitions"][0]["portMappings"] == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]
    in_sync_after_a_release(ctx, arn)
    assert [r for r in aws_behaviour(aws_like)["refusals"] if not r["passing"]] == []  # nothing AWS would refuse


def test_register_tags_from_the_spec_not_from_the_latest_revision(built: Context) -> None:
    register_as_a_release(FAMILY, "nginx:1.27")  # the latest carries no tags
    arn = release.register(built, IMAGE)
    tags = boto3.client("ecs", region_name=REGION).list_tags_for_resource(resourceArn=arn)["tags"]
    assert {t["key"]: t["value"] for t in tags} == ownership_tags(built.spec, "service", "taskdef", FAMILY)


def test_register_refuses_another_environments_family(ctx: Context) -> None:
    boto3.client("ecs", region_name=REGION).register_task_definition(
        family=FAMILY, containerDefinitions=[{"name": "api", "image": "x", "memory": 512}],
        tags=[{"key": "pointapp:environment", "value": "point-app-staging"}, {"key": "pointapp:step", "value": "service"},
              {"key": "pointapp:key", "value": "taskdef"}])
    with pytest.raises(PointappError, match="no task definition point-app-prod-api of point-app-prod"):
        release.register(ctx, IMAGE)
    assert len(_revisions()) == 1
