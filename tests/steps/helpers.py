"""What every step test needs: up a set of steps, prove a second up is a no-op, prove down is clean."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
import pytest

import pointapp
from pointapp.target import Context
from tests.conftest import REGION


def prod_with(only: str) -> Any:
    """The fixture ``prod``: the prod environment with the steps ``only`` up (in-process moto)."""

    @pytest.fixture(name="prod")
    def prod(ctx: Context) -> Context:
        pointapp.up(ctx, only=only)
        return ctx

    return prod


def client(name: str) -> Any:
    """A client of in-process moto, apart from pointapp's (to look at what a step made, or to change it)."""
    return boto3.client(name, region_name=REGION)


def up_is_idempotent(ctx: Context, only: str) -> None:
    """A second ``up`` makes no mutating call and the plan is empty."""
    before = len(ctx.calls)
    outcome = pointapp.up(ctx, only=only)
    assert outcome.applied == [], [c.line() for c in outcome.applied]
    assert [c for c in ctx.calls[before:] if c.mutating] == []
    assert pointapp.plan(ctx, only=only).empty


def down_leaves_nothing(ctx: Context, only: str) -> list[str]:
    """``down`` then nothing owned is found; returns its warnings (what the target could not delete)."""
    outcome = pointapp.down(ctx, only=only)
    remaining = pointapp.plan_destroy(ctx, only=only)
    skipped = [w.split(":")[0] for w in outcome.warnings]
    assert [f"{c.kind} {c.name}" for c in remaining.changes if f"{c.kind} {c.name}" not in skipped] == []
    return outcome.warnings


def as_ecs_describes(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container definition as ECS stores and describes it, which moto does not model: hostPort equal to the
    containerPort in awsvpc mode (ECS API reference, PortMapping; terraform-provider-aws #3401), the defaults it
    adds (cpu 0, empty mountPoints, volumesFrom, systemControls: hashicorp/terraform-aws-consul-ecs #318,
    techservicesillinois/terraform-aws-ecs-service #33),
    and environment variables in an order of its own (terraform-provider-aws #3035)."""
    described = {"cpu": 0, "mountPoints": [], "volumesFrom": [], "systemControls": [], **container}
    described["portMappings"] = [{**m, "hostPort": m["containerPort"]} for m in container.get("portMappings", [])]
    described["environment"] = list(reversed(container.get("environment", [])))
    if "logConfiguration" in container:
        described["logConfiguration"] = {**container["logConfiguration"], "secretOptions": []}
    return described


def register_as_a_release(family: str, image: str, tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Register a revision of ``family`` the way a release does, from its latest revision with ``image``, as ECS
    stores it; with ``tags`` (lower-case ``key``/``value``) or none (a tool that drops them)."""
    ecs = boto3.client("ecs", region_name=REGION)
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    request = {key: latest[key] for key in ("family", "networkMode", "requiresCompatibilities", "cpu", "memory",
                                            "executionRoleArn", "taskRoleArn", "volumes")}
    container = as_ecs_describes({**latest["containerDefinitions"][0], "image": image})
    answer = ecs.register_task_definition(**request, containerDefinitions=[container], **({"tags": tags} if tags else {}))
    return dict(answer["taskDefinition"])
