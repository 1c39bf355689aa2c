"""Releases: a new task-definition revision and a CodeDeploy blue/green deployment; status; rollback.

A service whose deployment controller is ``CODE_DEPLOY`` is never updated through ECS: every release is
a CodeDeploy deployment, which starts the new tasks beside the old ones (green beside blue), tries them
on the test listener, switches the production listener, and keeps the old tasks for the termination
wait so that a rollback is a switch back, not a redeploy.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointapp import artifacts, taskdef
from pointapp.errors import PointappError, SpecError
from pointapp.kinds import role_arn
from pointapp.steps import delivery, service
from pointapp.target import Context

_IMAGE = re.compile(r"^(?:[a-z0-9.-]+(?::\d{1,5})?/)?[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})$")
_RUNNING = ("Created", "Queued", "InProgress", "Baking", "Ready")


def image_uri(ctx: Context, tag: str) -> str:
    """The repository's image with ``tag``."""
    return taskdef.image_uri(ctx, ctx.spec, tag)


def check_image(image: str) -> str:
    """An image reference with a tag or digest, such as ``123.dkr.ecr.<region>.amazonaws.com/repo:sha``."""
    if not _IMAGE.match(image or ""):
        raise SpecError("--image", f"{image!r} is not an image reference with a tag or digest, "
                        "such as 123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/point-app-prod/api:3f2c1a9")
    return image


@dataclass
class Deployment:
    id: str
    status: str
    task_definition: str
    created: str
    description: str

    def __str__(self) -> str:
        return f"deployment {self.id}: {self.status}, task definition {self.task_definition}, created {self.created}"


def _names(ctx: Context) -> tuple[str, str]:
    return ctx.spec.name("api"), ctx.spec.name("api", "blue-green")


def _require_delivery(ctx: Context) -> None:
    state = delivery.STEP.discover(ctx)
    missing = [key for key in ("application", "deployment-group") if key not in state.found]
    if missing:
        raise PointappError(f"no CodeDeploy {' and '.join(missing)} for {ctx.spec.owner}: "
                            "run `pointapp up --only delivery` first")


def register(ctx: Context, image: str) -> str:
    """Register a revision of the API's task definition with ``image``; returns its ARN."""
    family = ctx.spec.name("api")
    found = [f for f in service.TaskDefinition().find(ctx, ctx.spec, service.NAME, {}) if not f.owner]
    if not found:  # the family's latest revision, when the family is this environment's
        raise PointappError(f"no task definition {family} of {ctx.spec.owner}: run `pointapp up --only service` first")
    current = found[0].raw
    props = {"cpu": current["cpu"], "memory": current["memory"], "execution_role": current["executionRoleArn"],
             "task_role": current["taskRoleArn"], "container": current["containerDefinitions"][0]}
    # The spec's ownership tags, not the latest revision's: one the pipeline registered may carry none.
    return service.register_revision(ctx, family, props, taskdef.revision_tags(ctx.spec), image=image).id


def deploy(ctx: Context, image: str, wait: bool = False) -> Deployment:
    """Register a revision with ``image`` and start a blue/green deployment of it."""
    check_image(image)
    _require_delivery(ctx)
    ctx.require_confirmation("pointapp deploy")
    arn = register(ctx, image)
    ctx.say(f"Registered {arn}")
    return _start(ctx, arn, f"pointapp deploy {image}", wait)


def _start(ctx: Context, task_definition: str, description: str, wait: bool) -> Deployment:
    application, group = _names(ctx)
    content = json.dumps(artifacts.appspec(ctx.spec, task_definition))
    deployment_id = ctx.client("codedeploy").create_deployment(
        applicationName=application, deploymentGroupName=group, description=description[:100],
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}})["deploymentId"]
    ctx.say(f"Started deployment {deployment_id} of {task_definition}")
    if wait:
        follow(ctx, deployment_id)
    return get(ctx, deployment_id)


def follow(ctx: Context, deployment_id: str) -> None:
    """Wait for a deployment to end, saying what it waits for; a failed one is an error."""
    gap = ctx.lacks("codedeploy", "RunDeployment")
    if gap:
        ctx.say(f"Not waiting: the emulator records deployments but never runs them (status stays "
                f"{get(ctx, deployment_id).status}); on AWS this follows it to the end")
        return
    codedeploy = ctx.client("codedeploy")
    started = time.monotonic()
    last = ""
    while True:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        status = info["status"]
        if status != last:
            ctx.say(f"  deployment {deployment_id}: {status} after {time.monotonic() - started:.0f}s")
            last = status
        if status == "Succeeded":
            return
        if status in ("Failed", "Stopped"):
            reason = info.get("errorInformation", {}).get("message", "no reason given")
            raise PointappError(f"deployment {deployment_id} {status.lower()}: {reason}")
        time.sleep(ctx.wait_delay(15))


def _describe(info: dict[str, Any]) -> Deployment:
    content = info.get("revision", {}).get("appSpecContent", {}).get("content", "{}")
    try:
        target = json.loads(content)["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
    except (ValueError, KeyError, IndexError, TypeError):
        target = "unknown"
    created: Any = info.get("createTime")
    return Deployment(info["deploymentId"], info.get("status", "?"), target,
                      created.isoformat(timespec="seconds") if hasattr(created, "isoformat") else str(created),
                      info.get("description", ""))


def get(ctx: Context, deployment_id: str) -> Deployment:
    return _describe(ctx.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def history(ctx: Context) -> list[Deployment]:
    """The deployments of the environment's deployment group, newest first."""
    application, group = _names(ctx)
    codedeploy = ctx.client("codedeploy")
    ids = [i for page in codedeploy.get_paginator("list_deployments").paginate(
        applicationName=application, deploymentGroupName=group) for i in page["deployments"]]
    found = []
    for start in range(0, len(ids), 25):
        found += codedeploy.batch_get_deployments(deploymentIds=ids[start:start + 25])["deploymentsInfo"]
    found.sort(key=lambda info: (info.get("createTime") or 0, info["deploymentId"]), reverse=True)
    return [_describe(info) for info in found]


def status(ctx: Context) -> Deployment | None:
    _require_delivery(ctx)
    deployments = history(ctx)
    return deployments[0] if deployments else None


def rollback(ctx: Context, wait: bool = False) -> str:
    """Stop a running deployment with rollback, or redeploy the revision before the latest."""
    _require_delivery(ctx)
    ctx.require_confirmation("pointapp rollback")
    deployments = history(ctx)
    if not deployments:
        raise PointappError(f"no deployment of {ctx.spec.owner} yet: nothing to roll back")
    latest = deployments[0]
    if latest.status in _RUNNING:
        gap = ctx.lacks("codedeploy", "StopDeployment")
        if gap:
            return f"deployment {latest.id} is {latest.status}; stopping it with rollback skipped: {gap}"
        ctx.client("codedeploy").stop_deployment(deploymentId=latest.id, autoRollbackEnabled=True)
        return f"stopped deployment {latest.id} with rollback: traffic goes back to the previous task set"
    previous = next((d for d in deployments[1:] if d.task_definition not in ("unknown", latest.task_definition)), None)
    if previous is None:
        raise PointappError("no earlier revision to roll back to")
    deployment = _start(ctx, previous.task_definition, f"pointapp rollback to {previous.task_definition}", wait)
    return f"rolling back: {deployment}"


def export_delivery(ctx: Context, directory: str | Path) -> list[Path]:
    """Write ``taskdef.json``, ``appspec.yaml``, both zipped as ``artifacts.zip`` (what the delivery step
    uploads, and what the CloudFormation delivery template's pipeline reads from its bucket), and the GitHub
    Actions workflow for this environment."""
    taskdef = delivery.release_task_definition(ctx)
    return artifacts.write_delivery(directory, ctx.spec, taskdef, role_arn(ctx, "github-release"), ctx.target.region)
