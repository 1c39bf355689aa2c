from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.kinds import BucketPolicy, bucket_policy_runtime
from pointapp.resources import Desired
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, aws_context, make_context, stub
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


def test_a_key_of_the_environment_converges_in_and_down_schedules_its_deletion(built: Context) -> None:
    keyed = make_context(load_spec("prod", {**REPO, "security": {"kms_key": True}}))
    planned = pointapp.plan(keyed, only=STEPS)
    changes = sorted((c.kind, c.key, c.action, bool(c.args.get("skip"))) for c in planned.changes)
    assert changes == [
        ("backup-selection", "backup/selection", "create", True),  # the emulator has no backup selections: skipped
        ("iam-role", "role/pipeline", "update", False),  # the pipeline role may use the key
        ("kms-alias", "kms/key", "create", False), ("kms-key", "kms/key", "create", False),  # the alias: a part of the key
        # CloudWatch Logs takes a key with AssociateKmsKey, which the emulator lacks: said, and skipped here
        ("log-group", "flow-logs/log-group", "update", True), ("log-group", "logs", "update", True),
        ("pipeline", "pipeline", "update", False), ("s3-bucket", "bucket", "update", False)]
    pointapp.apply(keyed, planned)
    kms = client("kms")
    key = kms.describe_key(KeyId="alias/pointapp/point-app-prod")["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    key_policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    logs_statement = key_policy["Statement"][1]
    assert logs_statement["Principal"] == {"Service": "logs.ap-northeast-1.amazonaws.com"}
    assert logs_statement["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                                       "arn:aws:logs:ap-northeast-1:123456789012:log-group:/pointapp/point-app-prod/*"}}
    rule = client("s3").get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule == {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]},
                    "BucketKeyEnabled": True}
    store = client("codepipeline").get_pipeline(name="point-app-prod-release")["pipeline"]["artifactStore"]
    assert store["encryptionKey"] == {"id": key["Arn"], "type": "KMS"}
    up_is_idempotent(keyed, STEPS)
    # a new environment with the key makes its log groups with it
    new = make_context(load_spec("staging", {"security": {"kms_key": True}}))
    pointapp.up(new, only="network")
    staging_key = client("kms").describe_key(KeyId="alias/pointapp/point-app-staging")["KeyMetadata"]["Arn"]
    group = client("logs").describe_log_groups(logGroupNamePrefix="/pointapp/point-app-staging/")["logGroups"][0]
    assert group["kmsKeyId"] == staging_key
    pointapp.down(new, only="network")
    assert client("kms").describe_key(KeyId=staging_key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert [a for a in client("kms").list_aliases()["Aliases"] if a["AliasName"] == "alias/pointapp/point-app-staging"] == []
    assert any("deletion scheduled in 30 days" in line for line in new.lines)  # type: ignore[attr-defined]


def test_the_artifact_bucket_expires_old_artifacts(built: Context) -> None:
    rules = {r["ID"]: r for r in client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert rules["expire-run-artifacts"]["Filter"] == {"Prefix": "point-app-prod-relea/"}
    assert rules["expire-run-artifacts"]["Expiration"] == {"Days": 30}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    # the emulator cannot evaluate a policy's condition: the TLS-only statement is left out there, and said
    assert any("no statement refusing plain HTTP here" in line for line in built.lines)  # type: ignore[attr-defined]


def test_on_aws_the_artifact_bucket_refuses_plain_http(mocked: None) -> None:
    ctx = aws_context()
    runtime = bucket_policy_runtime(ctx)
    assert runtime == {"tls_only": True, "tls_only_gap": ""}
    arn = f"arn:aws:s3:::{BUCKET}"
    props = {"bucket": BUCKET, "bucket_arn": arn, "statements": [], **runtime}
    deny = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    s3 = stub(ctx, "s3")
    s3.add_response("put_bucket_policy", {}, {"Bucket": BUCKET, "Policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [deny]})})
    desired = Desired("s3-bucket-policy", "bucket/policy", "point-app-prod-artifacts", {}, parent="bucket")
    BucketPolicy().create(ctx, desired, props, {})
    s3.assert_no_pending_responses()
