"""Two environments in one account never touch each other: prod and staging, built and torn down in any order."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

import pointapp
from pointapp import engine
from pointapp import steps as registry
from pointapp.errors import StepError
from pointapp.resources import StepState
from pointapp.spec import load_spec
from pointapp.target import Context
from tests.conftest import REGION, make_context


def fresh(env: str, settings: dict[str, Any] | None = None) -> Context:
    """A new context: nothing another environment's run changed is cached in it."""
    return make_context(load_spec(env, settings))


def owned(env: str) -> dict[str, list[tuple[str, ...]]]:
    """What ``env`` owns, step by step, as its inventory shows it (what it only uses is left out)."""
    ctx = fresh(env)
    observed = engine.discover(ctx)
    result = {}
    for step in registry.STEPS:
        state = observed[step.name]
        used = {f.id for f in state.found.values() if f.raw.get("borrowed")} if isinstance(state, StepState) else set()
        result[step.name] = sorted(tuple(row) for row in step.load().inventory(state).rows if row[2] not in used)
    return result


def in_sync(env: str, only: str | None = None) -> bool:
    return pointapp.plan(fresh(env), only).empty


def identity_owner() -> str:
    identity = boto3.client("sesv2", region_name=REGION).get_email_identity(EmailIdentity="example.com")
    return {t["Key"]: t["Value"] for t in identity["Tags"]}["pointapp:environment"]


def test_staging_up_and_down_leave_prod_as_it_was(mocked: None) -> None:
    pointapp.up(fresh("prod"))
    prod = owned("prod")
    assert in_sync("prod") and identity_owner() == "point-app-prod"
    pointapp.up(fresh("staging"))
    assert owned("prod") == prod and in_sync("prod") and in_sync("staging")
    staging = fresh("staging")
    mail = engine.discover(staging, "mail")["mail"]
    assert mail.found["identity"].raw["borrowed"] and identity_owner() == "point-app-prod"  # used, not taken over
    pointapp.down(staging)
    assert owned("prod") == prod and in_sync("prod")
    assert identity_owner() == "point-app-prod"


def test_prod_up_and_down_leave_staging_as_it_was(mocked: None) -> None:
    pointapp.up(fresh("staging"))
    (identity,) = [c for c in pointapp.plan(fresh("staging"), "mail").changes if c.kind == "ses-identity"]
    assert identity.args["skip"] and "environment point-app-prod owns it" in identity.detail  # prod makes it
    staging = owned("staging")
    assert in_sync("staging")
    pointapp.up(fresh("prod"))
    assert owned("staging") == staging and in_sync("staging") and in_sync("prod")
    pointapp.down(fresh("prod"))
    assert owned("staging") == staging and in_sync("staging")


def test_a_create_that_finds_another_environments_resource_stops_naming_the_owner(mocked: None) -> None:
    pointapp.up(fresh("prod"), "mail")
    claiming = fresh("staging", {"mail": {"identity_owner": "staging"}})  # staging believes the identity is its own
    (change,) = [c for c in pointapp.plan(claiming, "mail").changes if c.kind == "ses-identity"]
    assert "(stops: example.com belongs to environment point-app-prod)" in change.line()
    with pytest.raises(StepError, match=r"ses-identity example\.com: exists and belongs to environment point-app-prod") as stop:
        pointapp.up(claiming, "mail")
    assert "\n" not in str(stop.value)
    assert identity_owner() == "point-app-prod" and in_sync("prod", "mail")


def test_the_exported_templates_make_the_shared_identity_once() -> None:
    from pointapp import cloudformation

    def identities(env: str) -> list[str]:
        body = cloudformation.templates(load_spec(env), REGION, ["ap-northeast-1a", "ap-northeast-1c"])["mail"]
        return [r["Properties"]["EmailIdentity"] for r in body["Resources"].values() if r["Type"] == "AWS::SES::EmailIdentity"]

    assert identities("prod") == ["example.com"] and identities("staging") == []


def test_an_environment_that_uses_the_shared_identity_sends_through_its_own_configuration_set() -> None:
    """The shared identity's default configuration set is its owner's, which the task role may not use: the
    API names its own in each send (SES: the configuration set of the request takes precedence)."""
    from pointapp import taskdef

    container = taskdef.container_definition(load_spec("staging"), "image", "logs", REGION)
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["MAIL_FROM"] == "example.com"
    assert environment["MAIL_CONFIGURATION_SET"] == "point-app-staging-mail"
