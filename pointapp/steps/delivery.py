"""The ``delivery`` step: blue/green releases with CodeDeploy, started by CodePipeline on an ECR push.

- An encrypted, versioned, private S3 bucket for pipeline artifacts, holding ``taskdef.json`` and
  ``appspec.yaml`` (generated from the spec, see :mod:`pointapp.artifacts`).
- A CodeDeploy application (ECS) and deployment group: blue/green over the two target groups with the
  production and test listeners, automatic rollback, the old tasks kept for the termination wait.
- CodePipeline: sources (the ``latest`` tag in ECR, the artifacts in S3) then ``CodeDeployToECS``.
- An EventBridge rule that starts the pipeline when ``latest`` is pushed.
- With ``delivery.github_repository`` set: GitHub's OIDC provider and a role only that repository's
  branch can assume, to push images without long-lived keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from pointapp import resources
from pointapp.artifacts import ARTIFACTS_KEY, GITHUB_OIDC_HOST, appspec_text, artifacts_zip, task_definition
from pointapp.context import StepContext
from pointapp.diffs import Differences
from pointapp.kinds import (
    Bucket,
    BucketPolicy,
    Role,
    bucket_policy_props,
    bucket_policy_runtime,
    customer_key,
    document,
    pointapp_role,
    policy,
    role_arn,
    role_path,
    tags_of,
    trust_policy,
)
from pointapp.names import MOVING_TAG, repository_name
from pointapp.outputs import PRODUCTION_LISTENER, TEST_LISTENER
from pointapp.resources import Arn, Desired, Found, Kind, Ref, Request, ResourceStep, client_error_code, ignore_codes, retry_refused
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags, is_owned
from pointapp.taskdef import runtime_values as service_runtime

NAME = "delivery"
GITHUB_THUMBPRINT = "6938fd4d98bab03faadb97b34396831e3780aea1"


def bucket_name(ctx: StepContext, spec: Spec) -> str:
    """Bucket names are global: the account and region make this one unique."""
    return f"{spec.owner}-artifacts-{ctx.account}-{ctx.target.region}"[:63]


class ArtifactBucket(Bucket):
    """The pipeline's artifact bucket: versioned, private, encrypted, TLS only, with a lifecycle."""

    def bucket_name(self, ctx: StepContext, spec: Spec) -> str:
        return bucket_name(ctx, spec)


def bucket_tags(ctx: StepContext, spec: Spec) -> dict[str, str]:
    """The artifact bucket's tags ({} when it does not exist or is someone else's), read once for the bucket
    and the object in it: both are found side by side, each knowing from these whether the bucket is ours."""
    return ArtifactBucket().bucket_tags(ctx, spec)


def artifact_lifecycle(spec: Spec) -> list[dict[str, Any]]:
    """The artifact bucket's lifecycle (FSBP S3.13): CodePipeline's artifacts are needed for recent runs only, and
    so are the old versions of ``artifacts.zip``; the current one (the pipeline's source) never expires.
    CodePipeline writes a run's artifacts under the first 20 characters of the pipeline's name (AWS CodePipeline
    User Guide, "Input and output artifacts")."""
    days = spec.delivery.artifact_retention_days
    return [
        {"ID": "expire-run-artifacts", "Status": "Enabled", "Filter": {"Prefix": f"{spec.name('release')[:20]}/"},
         "Expiration": {"Days": days}},
        {"ID": "expire-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": days},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    ]


class ArtifactObject(Kind):
    """``taskdef.json`` and ``appspec.yaml`` zipped in the bucket; the pipeline's second source."""

    name = "s3-object"
    service = "s3"
    tagged = False

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        # Found beside the bucket, not after it: the bucket's tags say whether it is this step's bucket.
        bucket, tags = bucket_name(ctx, spec), bucket_tags(ctx, spec)
        if not is_owned(tags, spec, step) or tags[KEY] != "bucket":
            return []
        answer = ignore_codes(ctx.client("s3").head_object, ["404", "NoSuchKey", "NotFound"],
                              Bucket=bucket, Key=ARTIFACTS_KEY)
        if answer is None:
            return []
        return [Found(self.name, "artifacts", f"s3://{bucket}/{ARTIFACTS_KEY}", {**tags, KEY: "artifacts"}, answer)]

    @staticmethod
    def _digest(props: Mapping[str, Any]) -> str:
        return hashlib.sha256(props["content"]).hexdigest()

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        if found.raw.get("Metadata", {}).get("sha256") != self._digest(props):
            return {"content": f"sha256 {self._digest(props)[:12]}"}
        return {}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"put_object": dict(Bucket=props["bucket"], Key=ARTIFACTS_KEY, Body=props["content"],
                                   Metadata={"sha256": self._digest(props)}, ContentType="application/zip")}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["put_object"]
        head = {"Metadata": request["Metadata"]}
        ctx.client("s3").put_object(**request)
        return Found(self.name, desired.key, f"s3://{props['bucket']}/{ARTIFACTS_KEY}", dict(tags), head)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        self.create(ctx, desired, props, found.tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # removed with the bucket, which is emptied first

    def describe(self, found: Found) -> str:
        return f"sha256 {found.raw.get('Metadata', {}).get('sha256', '')[:12]}"


class OidcProvider(Kind):
    """GitHub's OIDC identity provider. One per account: one made elsewhere is used, never changed."""

    name = "oidc-provider"
    service = "iam"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        iam = ctx.client("iam")
        for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
            arn = provider["Arn"]
            if not arn.endswith(f"/{GITHUB_OIDC_HOST}"):
                continue
            tags = from_aws_tags(iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn).get("Tags"))
            borrowed = not is_owned(tags, spec, step)
            return [Found(self.name, "oidc", arn, tags if not borrowed else {KEY: "oidc"}, {"Arn": arn, "borrowed": borrowed})]
        return []

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_open_id_connect_provider": dict(
            Url=f"https://{GITHUB_OIDC_HOST}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=[GITHUB_THUMBPRINT],
            Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        arn = ctx.client("iam").create_open_id_connect_provider(
            **self.request(ctx.spec, desired, props, tags)["create_open_id_connect_provider"])["OpenIDConnectProviderArn"]
        return Found(self.name, desired.key, arn, dict(tags), {"Arn": arn, "borrowed": False})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        if not found.raw.get("borrowed"):  # another environment's provider keeps its own tags
            ctx.client("iam").tag_open_id_connect_provider(OpenIDConnectProviderArn=found.id, Tags=aws_tags(tags))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        return {}

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        # A provider made elsewhere is found "borrowed", which the core never plans to delete.
        iam = ctx.client("iam")
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                trusted = json.dumps(document(role.get("AssumeRolePolicyDocument") or "{}"))
                if GITHUB_OIDC_HOST in trusted and not role["Path"].startswith(role_path(ctx.spec)):
                    return f"kept: role {role['RoleName']} still trusts it"
        ignore_codes(iam.delete_open_id_connect_provider, ["NoSuchEntity"], OpenIDConnectProviderArn=found.id)
        return None

    def describe(self, found: Found) -> str:
        return "used, not owned" if found.raw.get("borrowed") else "owned"


def _deployment_group(ctx: StepContext, spec: Spec) -> dict[str, Any]:
    """The deployment group's description, or why there is none: ``{"group": ...}``, ``{"missing": "group"}``
    or ``{"missing": "application"}``. One call tells whether the application exists too (read once)."""

    def load() -> dict[str, Any]:
        try:
            return {"group": ctx.client("codedeploy").get_deployment_group(
                applicationName=spec.name("api"), deploymentGroupName=spec.name("api", "blue-green"))["deploymentGroupInfo"]}
        except botocore.exceptions.ClientError as error:
            missing = {"ApplicationDoesNotExistException": "application",
                       "DeploymentGroupDoesNotExistException": "group"}.get(client_error_code(error))
            if missing is None:
                raise
            return {"missing": missing}

    return dict(ctx.read_once(("deployment-group", spec.owner), load))


class Application(Kind):
    name = "codedeploy-application"
    service = "codedeploy"
    operations = {"delete": ("codedeploy", "DeleteApplication")}

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        codedeploy = ctx.client("codedeploy")
        name = spec.name("api")
        view = _deployment_group(ctx, spec)
        if view.get("missing") == "application":
            return []
        if "group" in view:  # its deployment group exists, so it does, with the platform the group names
            application = {"applicationName": name, "computePlatform": view["group"].get("computePlatform")}
        else:
            answer = ignore_codes(codedeploy.get_application, ["ApplicationDoesNotExistException"], applicationName=name)
            if answer is None:
                return []
            application = answer["application"]
        arn = Arn("codedeploy", f"application:{name}", None, None).on(ctx)
        return self.owned(spec, step, [application], lambda _: name,
                          lambda _: tags_of(ctx, arn, lambda: from_aws_tags(
                              codedeploy.list_tags_for_resource(ResourceArn=arn).get("Tags"))))

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_application": dict(applicationName=desired.name, computePlatform="ECS", tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        ctx.client("codedeploy").create_application(**self.request(ctx.spec, desired, props, tags)["create_application"])
        return Found(self.name, desired.key, desired.name, dict(tags), {"computePlatform": "ECS"})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "codedeploy", Arn("codedeploy", f"application:{found.id}", None, None).on(ctx), tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("codedeploy").delete_application, ["ApplicationDoesNotExistException"],
                     applicationName=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"compute platform {found.raw.get('computePlatform')}"


def deployment_group_request(props: Mapping[str, Any]) -> dict[str, Any]:
    """The deployment group's settings as CreateDeploymentGroup and UpdateDeploymentGroup take them."""
    return {
        "serviceRoleArn": props["role"],
        "deploymentConfigName": props["config"],
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE",
                                                          "terminationWaitTimeInMinutes": props["termination_wait"]},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
        },
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]},
        "ecsServices": [{"serviceName": props["service"], "clusterName": props["cluster"]}],
        "loadBalancerInfo": {"targetGroupPairInfoList": [{
            "targetGroups": [{"name": name} for name in props["target_groups"]],
            "prodTrafficRoute": {"listenerArns": [props["production_listener"]]},
            "testTrafficRoute": {"listenerArns": [props["test_listener"]]},
        }]},
    }


_GROUP_FIELDS = ("serviceRoleArn", "deploymentConfigName", "deploymentStyle", "blueGreenDeploymentConfiguration",
                 "autoRollbackConfiguration", "ecsServices", "loadBalancerInfo")


class DeploymentGroup(Kind):
    name = "deployment-group"
    finds_after = ("codedeploy-application",)
    service = "codedeploy"
    operations = {"update": ("codedeploy", "UpdateDeploymentGroup"), "delete": ("codedeploy", "DeleteDeploymentGroup")}

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        application = known.get("application")
        if application is None:
            return []
        codedeploy = ctx.client("codedeploy")
        name = spec.name("api", "blue-green")
        group = _deployment_group(ctx, spec).get("group")
        if group is None:
            return []
        arn = Arn("codedeploy", f"deploymentgroup:{application.id}/{name}", None, None).on(ctx)
        return self.owned(spec, step, [group], lambda _: name,
                          lambda _: tags_of(ctx, arn, lambda: from_aws_tags(
                              codedeploy.list_tags_for_resource(ResourceArn=arn).get("Tags"))))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        wanted = deployment_group_request(props)
        current = {k: found.raw.get(k) for k in _GROUP_FIELDS}
        keys = [k for k in _GROUP_FIELDS if _normal(current[k]) != _normal(wanted[k])]
        return Differences({k: wanted[k] for k in keys}, {k: current[k] for k in keys})

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_deployment_group": dict(applicationName=props["application"], deploymentGroupName=desired.name,
                                                tags=aws_tags(tags), **deployment_group_request(props))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_deployment_group"]
        retry_refused(ctx, resources.CODEDEPLOY_ROLE, props["role"],
                       lambda: ctx.client("codedeploy").create_deployment_group(**request))
        return Found(self.name, desired.key, desired.name, dict(tags), deployment_group_request(props))

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        application = ctx.spec.name("api")  # the deployment group's application (the spec names both)
        add_tags(ctx, "codedeploy", Arn("codedeploy", f"deploymentgroup:{application}/{found.id}", None, None).on(ctx), tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        codedeploy = ctx.client("codedeploy")
        retry_refused(ctx, resources.CODEDEPLOY_ROLE, props["role"], lambda: codedeploy.update_deployment_group(
            applicationName=props["application"], currentDeploymentGroupName=found.id,
            **deployment_group_request(props)))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("codedeploy").delete_deployment_group,
                     ["DeploymentGroupDoesNotExistException", "ApplicationDoesNotExistException"],
                     applicationName=ctx.spec.name("api"), deploymentGroupName=found.id)
        return None

    def describe(self, found: Found) -> str:
        raw = found.raw
        style = raw.get("deploymentStyle", {}).get("deploymentType")
        wait = raw.get("blueGreenDeploymentConfiguration", {}).get("terminateBlueInstancesOnDeploymentSuccess", {})
        return f"{style}, {raw.get('deploymentConfigName')}, old tasks kept {wait.get('terminationWaitTimeInMinutes')} min"


def _normal(value: Any) -> Any:
    """Compare settings regardless of list order and of empty fields AWS adds."""
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in sorted(value.items()) if v not in (None, [], {})}
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def pipeline_definition(spec: Spec, props: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Source (the ``latest`` image in ECR and the artifacts in S3), then ``CodeDeployToECS``."""
    return {
        "name": name,
        "roleArn": props["role"],
        # With the environment's own key, CodePipeline encrypts the artifacts with it, not S3's aws/s3 key
        # (CodePipeline API reference, ArtifactStore encryptionKey).
        "artifactStore": {"type": "S3", "location": props["bucket"],
                          **({"encryptionKey": {"id": props["kms_key"], "type": "KMS"}} if props.get("kms_key") else {})},
        "stages": [
            {"name": "Source", "actions": [
                {"name": "Image", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
                 "configuration": {"RepositoryName": repository_name(spec), "ImageTag": MOVING_TAG},
                 "outputArtifacts": [{"name": "Image"}], "runOrder": 1},
                {"name": "Artifacts", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                 "configuration": {"S3Bucket": props["bucket"], "S3ObjectKey": ARTIFACTS_KEY,
                                   "PollForSourceChanges": "false"},
                 "outputArtifacts": [{"name": "Artifacts"}], "runOrder": 1},
            ]},
            {"name": "Deploy", "actions": [
                {"name": "BlueGreen", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS",
                                                       "version": "1"},
                 "configuration": {
                     "ApplicationName": props["application"], "DeploymentGroupName": props["deployment_group"],
                     "TaskDefinitionTemplateArtifact": "Artifacts", "TaskDefinitionTemplatePath": "taskdef.json",
                     "AppSpecTemplateArtifact": "Artifacts", "AppSpecTemplatePath": "appspec.yaml",
                     "Image1ArtifactName": "Image", "Image1ContainerName": "IMAGE1_NAME"},
                 "inputArtifacts": [{"name": "Image"}, {"name": "Artifacts"}], "runOrder": 1},
            ]},
        ],
        "version": 1,
    }


class Pipeline(Kind):
    name = "pipeline"
    service = "codepipeline"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        codepipeline, name = ctx.client("codepipeline"), spec.name("release")
        answer = ignore_codes(codepipeline.get_pipeline, ["PipelineNotFoundException"], name=name)
        if answer is None:
            return []
        arn = answer.get("metadata", {}).get("pipelineArn") or Arn("codepipeline", name, None, None).on(ctx)
        return self.owned(spec, step, [{**answer["pipeline"], "arn": arn}], lambda _: name,
                          lambda _: tags_of(ctx, arn, lambda: from_aws_tags(
                              codepipeline.list_tags_for_resource(resourceArn=arn).get("tags"), lower=True)))

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        wanted = pipeline_definition(props["spec"], props, desired.name)
        fields = ("roleArn", "artifactStore", "stages")
        current = {k: found.raw.get(k) for k in fields}
        return {k: "as specified" for k in fields if _normal(current[k]) != _normal(wanted[k])}

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_pipeline": dict(pipeline=pipeline_definition(props["spec"], props, desired.name),
                                        tags=aws_tags(tags, lower=True))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        request = self.request(ctx.spec, desired, props, tags)["create_pipeline"]
        answer = retry_refused(ctx, resources.CODEPIPELINE_ROLE, props["role"],
                                lambda: ctx.client("codepipeline").create_pipeline(**request))
        arn = Arn("codepipeline", desired.name, None, None).on(ctx)
        return Found(self.name, desired.key, desired.name, dict(tags), {**answer["pipeline"], "arn": arn})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "codepipeline", found.raw["arn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        codepipeline = ctx.client("codepipeline")
        definition = pipeline_definition(props["spec"], props, desired.name)
        definition["version"] = found.raw.get("version", 1)
        retry_refused(ctx, resources.CODEPIPELINE_ROLE, props["role"], lambda: codepipeline.update_pipeline(pipeline=definition))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("codepipeline").delete_pipeline, ["PipelineNotFoundException"], name=found.id)
        return None

    def describe(self, found: Found) -> str:
        stages = found.raw.get("stages", [])
        return " -> ".join(f"{s['name']}({', '.join(a['actionTypeId']['provider'] for a in s['actions'])})" for s in stages)


def push_event_pattern(spec: Spec) -> dict[str, Any]:
    """A successful push of ``latest`` to the API's repository."""
    return {"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
            "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": [repository_name(spec)],
                       "image-tag": [MOVING_TAG]}}


class EventRule(Kind):
    name = "event-rule"
    service = "events"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        events, name = ctx.client("events"), spec.name("release-on-push")
        rule = ignore_codes(events.describe_rule, ["ResourceNotFoundException"], Name=name)
        tags = {} if rule is None else tags_of(ctx, rule["Arn"], lambda: from_aws_tags(
            events.list_tags_for_resource(ResourceARN=rule["Arn"]).get("Tags")))
        if rule is None or not is_owned(tags, spec, step):
            return []
        rule["Targets"] = events.list_targets_by_rule(Rule=name).get("Targets", [])
        rule["EventPattern"] = json.loads(rule.get("EventPattern") or "{}")
        return [Found(self.name, tags[KEY], name, tags, rule)]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes: dict[str, Any] = {}
        if raw.get("EventPattern") != props["pattern"] or raw.get("State") != "ENABLED":
            changes["pattern"] = "push of latest"
        targets = [(t.get("Arn"), t.get("RoleArn")) for t in raw.get("Targets", [])]
        if targets != [(props["pipeline"], props["role"])]:
            changes["target"] = "the release pipeline"
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"put_rule": dict(Name=desired.name, EventPattern=json.dumps(props["pattern"]), State="ENABLED",
                                 Description="Start the release pipeline when the latest image is pushed",
                                 Tags=aws_tags(tags)),
                "put_targets": dict(Rule=desired.name,
                                    Targets=[{"Id": "pipeline", "Arn": props["pipeline"], "RoleArn": props["role"]}])}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        events = ctx.client("events")
        request = self.request(ctx.spec, desired, props, tags)
        arn = events.put_rule(**request["put_rule"])["RuleArn"]
        events.put_targets(**request["put_targets"])
        return Found(self.name, desired.key, desired.name, dict(tags), {"Arn": arn, "State": "ENABLED",
                                                                          "EventPattern": props["pattern"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "events", found.raw["Arn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        events = ctx.client("events")
        if "pattern" in changes:
            events.put_rule(Name=found.id, EventPattern=json.dumps(props["pattern"]), State="ENABLED")
        if "target" in changes:
            events.put_targets(Rule=found.id, Targets=[{"Id": "pipeline", "Arn": props["pipeline"], "RoleArn": props["role"]}])

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        events = ctx.client("events")
        targets = [t["Id"] for t in found.raw.get("Targets", [])]
        if targets:
            ignore_codes(events.remove_targets, ["ResourceNotFoundException"], Rule=found.id, Ids=targets)
        ignore_codes(events.delete_rule, ["ResourceNotFoundException"], Name=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('State')}, on a push of '{MOVING_TAG}'"


def _roles(spec: Spec) -> list[Desired]:
    owner = spec.owner
    task_roles = [pointapp_role(spec, name) for name in ("task-execution", "task")]
    pass_roles = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": task_roles,
                  "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}
    codedeploy = policy(
        {"Effect": "Allow", "Action": ["ecs:DescribeServices", "ecs:CreateTaskSet", "ecs:UpdateServicePrimaryTaskSet",
                                       "ecs:DeleteTaskSet"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners",
                                       "elasticloadbalancing:DescribeRules", "elasticloadbalancing:ModifyListener",
                                       "elasticloadbalancing:ModifyRule"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"], "Resource": "*"},
        pass_roles)
    pipeline = policy(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketVersioning", "s3:PutObject"],
         "Resource": [Arn("s3", f"{owner}-artifacts-*", "", ""), Arn("s3", f"{owner}-artifacts-*/*", "", "")]},
        {"Effect": "Allow", "Action": ["ecr:DescribeImages"], "Resource": Arn("ecr", f"repository/{repository_name(spec)}")},
        {"Effect": "Allow", "Action": ["codedeploy:CreateDeployment", "codedeploy:GetApplication",
                                       "codedeploy:GetApplicationRevision", "codedeploy:GetDeployment",
                                       "codedeploy:GetDeploymentConfig", "codedeploy:RegisterApplicationRevision"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": ["ecs:RegisterTaskDefinition", "ecs:TagResource"], "Resource": "*"},
        pass_roles,
        # S3 and CodePipeline use the environment's key with the pipeline role's own permissions
        *([{"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": customer_key(spec)}]
          if customer_key(spec) else []))
    start = policy({"Effect": "Allow", "Action": "codepipeline:StartPipelineExecution",
                    "Resource": Arn("codepipeline", spec.name("release"))})
    roles = [
        Desired("iam-role", "role/codedeploy", spec.name("codedeploy"),
                {"trust": trust_policy("codedeploy.amazonaws.com", spec=spec), "inline": {"blue-green-ecs": codedeploy}},
                "CodeDeploy switches the load balancer between blue and green task sets"),
        Desired("iam-role", "role/pipeline", spec.name("pipeline"),
                {"trust": trust_policy("codepipeline.amazonaws.com", spec=spec), "inline": {"release": pipeline}},
                "CodePipeline reads the sources and starts CodeDeploy"),
        Desired("iam-role", "role/events", spec.name("events"),
                {"trust": trust_policy("events.amazonaws.com", spec=spec), "inline": {"start-release": start}},
                "EventBridge starts the pipeline on a push of latest"),
    ]
    repository = spec.delivery.github_repository
    if repository:
        push = policy(
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Effect": "Allow", "Action": ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload",
                                           "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
                                           "ecr:BatchGetImage"],
             "Resource": Arn("ecr", f"repository/{repository_name(spec)}")})
        roles.append(Desired("iam-role", "role/github", spec.name("github-release"),
                             {"trust": Ref("runtime", "github_trust"), "inline": {"push-image": push}},
                             f"GitHub Actions in {repository} ({spec.delivery.github_branch}) push images"))
    return roles


def github_trust(ctx: StepContext, spec: Spec) -> dict[str, Any]:
    """Only the configured repository's branch, through GitHub's OIDC provider, may assume the role."""
    return github_trust_for(spec, Arn("iam", f"oidc-provider/{GITHUB_OIDC_HOST}", "", None).on(ctx))


def github_trust_for(spec: Spec, provider: Any) -> dict[str, Any]:
    """The GitHub trust policy for the provider ``provider`` (an ARN, or a template's expression of one)."""
    return trust_policy(statement={
        "Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
            f"{GITHUB_OIDC_HOST}:sub": f"repo:{spec.delivery.github_repository}:ref:refs/heads/{spec.delivery.github_branch}",
        }}})


def release_task_definition(ctx: StepContext) -> dict[str, Any]:
    """``taskdef.json``: the task definition the pipeline registers, with the service's container and roles.
    The step uploads it and ``pointapp export delivery`` writes it: one source for both."""
    container = service_runtime(ctx)["container"]
    return task_definition(ctx.spec, container, role_arn(ctx, "task-execution"), role_arn(ctx, "task"))


def runtime_values(ctx: StepContext) -> dict[str, Any]:
    """What depends on the account and region, and the artifacts built from the service's roles."""
    spec = ctx.spec
    values: dict[str, Any] = {
        **bucket_policy_runtime(ctx),
        "bucket": bucket_name(ctx, spec),
        "artifacts": artifacts_zip(release_task_definition(ctx), appspec_text(spec)),
        "pipeline_arn": Arn("codepipeline", spec.name("release"), None, None).on(ctx),
        "production_listener": PRODUCTION_LISTENER.read(ctx, f"<{PRODUCTION_LISTENER.key}>"),
        "test_listener": TEST_LISTENER.read(ctx, f"<{TEST_LISTENER.key}>"),
    }
    if spec.delivery.github_repository:
        values["github_trust"] = github_trust(ctx, spec)
    return values


def desired(spec: Spec) -> list[Desired]:
    """The delivery step's resources, in creation order."""
    delivery = spec.delivery
    application, group = spec.name("api"), spec.name("api", "blue-green")
    key = customer_key(spec)
    wanted = [Desired("s3-bucket", "bucket", f"{spec.owner}-artifacts",
                      {"bucket": Ref("runtime", "bucket"), "region": Ref("runtime", "region"), "versioning": True,
                       "kms_key": key, "lifecycle": artifact_lifecycle(spec)},
                      f"pipeline artifacts: versioned, {'SSE-KMS (own key)' if key else 'SSE-S3'}, private, "
                      f"kept {delivery.artifact_retention_days} days"),
              Desired("s3-bucket-policy", "bucket/policy", f"{spec.owner}-artifacts",
                      bucket_policy_props(Ref("runtime", "bucket"), Ref(NAME, "bucket", "Arn"), []),
                      "refuses requests without TLS", parent="bucket")]
    wanted.append(Desired("s3-object", "artifacts", ARTIFACTS_KEY,
                          {"bucket": Ref("runtime", "bucket"), "content": Ref("runtime", "artifacts")},
                          "taskdef.json and appspec.yaml for the CodeDeployToECS action"))
    if delivery.github_repository:
        wanted.append(Desired("oidc-provider", "oidc", GITHUB_OIDC_HOST, {}, "GitHub Actions sign-in without keys"))
    wanted += _roles(spec)
    wanted += [
        Desired("codedeploy-application", "application", application, {}, "compute platform ECS"),
        Desired("deployment-group", "deployment-group", group, {
            "application": application, "role": Ref(NAME, "role/codedeploy", "Arn"), "config": delivery.deployment_config,
            "termination_wait": delivery.termination_wait_minutes, "cluster": spec.name("cluster"),
            "service": spec.name("api"), "target_groups": [spec.name("tg", "blue"), spec.name("tg", "green")],
            "production_listener": Ref("runtime", "production_listener"), "test_listener": Ref("runtime", "test_listener")},
            f"blue/green, {delivery.deployment_config}, automatic rollback, old tasks kept "
            f"{delivery.termination_wait_minutes} min"),
        Desired("pipeline", "pipeline", spec.name("release"), {
            "spec": spec, "role": Ref(NAME, "role/pipeline", "Arn"), "bucket": Ref("runtime", "bucket"),
            "application": application, "deployment_group": group, "kms_key": key},
            f"ECR {repository_name(spec)}:{MOVING_TAG} + S3 artifacts -> CodeDeployToECS"),
        Desired("event-rule", "rule", spec.name("release-on-push"), {
            "pattern": push_event_pattern(spec), "pipeline": Ref("runtime", "pipeline_arn"),
            "role": Ref(NAME, "role/events", "Arn")}, f"a push of '{MOVING_TAG}' starts the pipeline"),
    ]
    return wanted


STEP = ResourceStep(NAME, [ArtifactBucket(), BucketPolicy(), ArtifactObject(), OidcProvider(), Role(), Application(), DeploymentGroup(),
                           Pipeline(), EventRule()], desired, uses=("network", "service"), runtime=runtime_values)
