from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context
from tests.steps.helpers import down_leaves_nothing, up_is_idempotent

STEPS = "network,endpoints,registry,database,cache,mail,service,delivery"
REPO = {"delivery": {"github_repository": "acme/point-app", "termination_wait_minutes": 15,
                     "deployment_config": "CodeDeployDefault.ECSCanary10Percent5Minutes"}}
BUCKET = "point-app-prod-artifacts-123456789012-ap-northeast-1"


def client(name: str) -> Any:
    return boto3.client(name, region_name=REGION)


@pytest.fixture
def built(mocked: None) -> Context:
    ctx = make_context(load_spec("prod", REPO))
    pointapp.up(ctx, only=STEPS)
    return ctx


def test_deployment_group_is_blue_green_with_rollback(built: Context) -> None:
    service = built.outputs("service")
    group = client("codedeploy").get_deployment_group(applicationName="point-app-prod-api",
                                                      deploymentGroupName="point-app-prod-api-blue-green")["deploymentGroupInfo"]
    assert client("codedeploy").get_application(applicationName="point-app-prod-api")["application"]["computePlatform"] == "ECS"
    assert group["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert group["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    assert group["autoRollbackConfiguration"]["enabled"] is True
    assert "DEPLOYMENT_FAILURE" in group["autoRollbackConfiguration"]["events"]
    wait = group["blueGreenDeploymentConfiguration"]["terminateBlueInstancesOnDeploymentSuccess"]
    assert wait == {"action": "TERMINATE", "terminationWaitTimeInMinutes": 15}
    assert group["ecsServices"] == [{"serviceName": "point-app-prod-api", "clusterName": "point-app-prod-cluster"}]
    (pair,) = group["loadBalancerInfo"]["targetGroupPairInfoList"]
    assert [g["name"] for g in pair["targetGroups"]] == ["point-app-prod-tg-blue", "point-app-prod-tg-green"]
    assert pair["prodTrafficRoute"]["listenerArns"] == [service["listener/production"]]
    assert pair["testTrafficRoute"]["listenerArns"] == [service["listener/test"]]
    assert group["serviceRoleArn"].endswith("role/pointapp/point-app-prod/point-app-prod-codedeploy")


def test_pipeline_stages_and_actions(built: Context) -> None:
    pipeline = client("codepipeline").get_pipeline(name="point-app-prod-release")["pipeline"]
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Deploy"]
    image, artifacts = pipeline["stages"][0]["actions"]
    assert image["actionTypeId"]["provider"] == "ECR"
    assert image["configuration"] == {"RepositoryName": "point-app-prod/api", "ImageTag": "latest"}
    assert artifacts["actionTypeId"]["provider"] == "S3" and artifacts["configuration"]["S3Bucket"] == BUCKET
    (deploy,) = pipeline["stages"][1]["actions"]
    assert deploy["actionTypeId"]["provider"] == "CodeDeployToECS"
    config = deploy["configuration"]
    assert (config["TaskDefinitionTemplatePath"], config["AppSpecTemplatePath"]) == ("taskdef.json", "appspec.yaml")
    assert (config["Image1ArtifactName"], config["Image1ContainerName"]) == ("Image", "IMAGE1_NAME")
    assert pipeline["artifactStore"] == {"type": "S3", "location": BUCKET}


def test_bucket_is_private_encrypted_versioned_and_holds_the_artifacts(built: Context) -> None:
    s3 = client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    body = s3.get_object(Bucket=BUCKET, Key="release/artifacts.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        taskdef = json.loads(archive.read("taskdef.json"))
        appspec = archive.read("appspec.yaml").decode()
    assert taskdef["containerDefinitions"][0]["image"] == "<IMAGE1_NAME>"
    assert "TaskDefinition: <TASK_DEFINITION>" in appspec


def test_push_of_latest_starts_the_pipeline(built: Context) -> None:
    events = client("events")
    rule = events.describe_rule(Name="point-app-prod-release-on-push")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["source"] == ["aws.ecr"] and pattern["detail"]["image-tag"] == ["latest"]
    assert pattern["detail"]["repository-name"] == ["point-app-prod/api"]
    (target,) = events.list_targets_by_rule(Rule="point-app-prod-release-on-push")["Targets"]
    assert target["Arn"].endswith(":point-app-prod-release") and target["RoleArn"].endswith("/point-app-prod-events")


def test_github_role_trusts_only_the_repository_branch(built: Context) -> None:
    iam = client("iam")
    (provider,) = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    role = iam.get_role(RoleName="point-app-prod-github-release")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    statement = (json.loads(trust) if isinstance(trust, str) else trust)["Statement"][0]
    assert statement["Principal"] == {"Federated": provider["Arn"]}
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/point-app:ref:refs/heads/main"}


def test_without_a_repository_there_is_no_github_role(mocked: None) -> None:
    ctx = make_context()
    pointapp.up(ctx, only=STEPS)
    assert client("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    names = [r["RoleName"] for r in client("iam").list_roles()["Roles"]]
    assert "point-app-prod-github-release" not in names and "point-app-prod-pipeline" in names


def test_idempotent(built: Context) -> None:
    up_is_idempotent(built, STEPS)


def test_down_leaves_only_what_the_emulator_cannot_delete(built: Context) -> None:
    # Not the database, the cache and the network they stand on, built for the service (the prod database is kept).
    warnings = down_leaves_nothing(built, "delivery,service,mail,registry,endpoints")
    assert sorted(w.split(":")[0] for w in warnings) == ["codedeploy-application point-app-prod-api",
                                                         "deployment-group point-app-prod-api-blue-green"]
    assert all("the emulator does not implement codedeploy Delete" in w for w in warnings)
    assert client("codepipeline").list_pipelines()["pipelines"] == []
    assert BUCKET not in [b["Name"] for b in client("s3").list_buckets()["Buckets"]]


def test_an_oidc_provider_made_elsewhere_is_used_not_owned(mocked: None) -> None:
    iam = client("iam")
    arn = iam.create_open_id_connect_provider(Url="https://token.actions.githubusercontent.com",
                                              ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40])[
        "OpenIDConnectProviderArn"]
    ctx = make_context(load_spec("prod", REPO))
    pointapp.up(ctx, only=STEPS)
    up_is_idempotent(ctx, STEPS)
    pointapp.down(ctx, only="delivery")
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [arn]


def test_up_converges_where_codedeploy_and_codepipeline_refuse_new_roles_for_a_while(aws_like: str) -> None:
    """On the AWS-behaviour layer, CodeDeploy and CodePipeline refuse a role for seconds after CreateRole."""
    from tests.conftest import aws_like_context

    ctx = aws_like_context(aws_like, load_spec("prod", REPO))
    outcome = pointapp.up(ctx, only=STEPS)
    assert outcome.applied
    waited = [line for line in ctx.lines if "waiting for IAM to make" in line]  # type: ignore[attr-defined]
    assert any("point-app-prod-codedeploy usable by CodeDeploy" in line for line in waited), waited
    codedeploy = aws_like_context(aws_like).client("codedeploy")
    group = codedeploy.get_deployment_group(applicationName="point-app-prod-api",
                                            deploymentGroupName="point-app-prod-api-blue-green")["deploymentGroupInfo"]
    assert group["serviceRoleArn"].endswith("/point-app-prod-codedeploy")
    assert aws_like_context(aws_like).client("codepipeline").get_pipeline(name="point-app-prod-release")["pipeline"]
