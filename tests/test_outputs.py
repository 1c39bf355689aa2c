"""Every value a step hands on is written where its one definition says (in-process moto)."""

from __future__ import annotations

import boto3
import moto.settings
import pytest

import pointapp
from pointapp import outputs
from pointapp.outputs import Output
from pointapp.spec import load_spec
from tests.conftest import REGION, make_context

NAMED = [value for value in vars(outputs).values() if isinstance(value, Output)]


def test_each_output_names_step_resource_and_value() -> None:
    assert outputs.DATABASE_ADDRESS.key == "instance/address"
    assert outputs.DATABASE_ADDRESS.path == "database/instance/address"
    assert outputs.PRODUCTION_LISTENER.key == "listener/production"  # an id: no value name
    assert len({output.path for output in NAMED}) == len(NAMED)  # one definition each


def test_every_named_output_is_written_by_its_step(mocked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # On the user's domain (a hosted zone of theirs): the domain step's outputs too. moto's ACM issues at once.
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", 0)
    boto3.client("route53", region_name=REGION).create_hosted_zone(Name="example.com", CallerReference="outputs")
    ctx = make_context(load_spec("prod", {"domain": {"name": "example.com"}}))
    steps = sorted({output.step for output in NAMED})
    pointapp.up(ctx, only=",".join(["network", "endpoints", "registry", *steps]))
    missing = [output.path for output in NAMED if output.key not in ctx.outputs(output.step)]
    assert missing == []
    empty = [output.path for output in NAMED if output.read(ctx) in (None, "")]
    assert empty == []
    assert isinstance(outputs.MAIL_DKIM_TOKENS.read(ctx), list)  # the emulator gives none; AWS gives three
