"""Tags: the two list forms, and each service's tagging call as the AWS API models define it."""

from __future__ import annotations

import boto3
import pytest
from botocore import xform_name

from pointapp.tags import TAGGING, add_tags, aws_tags, from_aws_tags
from tests.conftest import REGION


def test_both_list_forms_go_and_come_back() -> None:
    tags = {"Name": "point-app-prod-vpc", "pointapp:environment": "point-app-prod"}
    assert aws_tags(tags) == [{"Key": "Name", "Value": "point-app-prod-vpc"},
                              {"Key": "pointapp:environment", "Value": "point-app-prod"}]
    assert aws_tags(tags, lower=True)[0] == {"key": "Name", "value": "point-app-prod-vpc"}
    assert from_aws_tags(aws_tags(tags)) == tags and from_aws_tags(aws_tags(tags, lower=True), lower=True) == tags
    assert from_aws_tags(None) == {}


@pytest.mark.parametrize("service", sorted(TAGGING))
def test_each_tagging_call_is_the_services_own(service: str) -> None:
    how = TAGGING[service]
    model = boto3.client(service, region_name=REGION).meta.service_model
    (operation,) = [name for name in model.operation_names if xform_name(name) == how.operation]
    members = model.operation_model(operation).input_shape.members
    assert how.resource in members and how.argument in members
    assert (members[how.resource].type_name == "list") == how.several
    tags = members[how.argument]
    if how.form == "map":
        assert tags.type_name == "map"
    else:
        assert tags.type_name == "list" and set(tags.member.members) == ({"key", "value"} if how.form == "lower"
                                                                         else {"Key", "Value"})


class _Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def client(self, service: str) -> object:
        recording = self

        class Client:
            def __getattr__(self, operation: str) -> object:
                return lambda **kwargs: recording.calls.append((f"{service}.{operation}", kwargs))

        return Client()


def test_add_tags_makes_the_one_call_in_the_services_form() -> None:
    ctx = _Recording()
    add_tags(ctx, "ec2", "i-0123", {"Project": "point-app"})
    add_tags(ctx, "ecs", "arn:aws:ecs:ap-northeast-1:123456789012:cluster/c", {"Project": "point-app"})
    add_tags(ctx, "amplify", "arn:aws:amplify:ap-northeast-1:123456789012:apps/d1", {"Project": "point-app"})
    assert ctx.calls == [
        ("ec2.create_tags", {"Resources": ["i-0123"], "Tags": [{"Key": "Project", "Value": "point-app"}]}),
        ("ecs.tag_resource", {"resourceArn": "arn:aws:ecs:ap-northeast-1:123456789012:cluster/c",
                              "tags": [{"key": "Project", "value": "point-app"}]}),
        ("amplify.tag_resource", {"resourceArn": "arn:aws:amplify:ap-northeast-1:123456789012:apps/d1",
                                  "tags": {"Project": "point-app"}})]
