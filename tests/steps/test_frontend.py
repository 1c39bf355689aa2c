"""The frontend step: Amplify requests checked against botocore's model (Stubber); the emulator skips them."""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import boto3
import pytest
import yaml
from botocore.stub import ANY

import pointapp
from pointapp.plan import Plan
from pointapp.resources import Ref
from pointapp.spec import load_spec
from pointapp.steps import frontend
from tests.conftest import REGION, aws_context, make_context, stub

#: The frontend planned alone: the service it depends on is not built here (its outputs, where needed, given).
ALONE: Final = "ignore"
SETTINGS = {"frontend": {"repository": "https://github.com/acme/web", "access_token_parameter": "/acme/github-token"}}
TOKEN = "ghp_not-a-real-token-0123456789"
CERTIFICATE = "arn:aws:acm:ap-northeast-1:123456789012:certificate/x"


def test_build_spec_is_a_react_build() -> None:
    document = yaml.safe_load(frontend.build_spec(load_spec("prod", SETTINGS)))
    assert document["frontend"]["phases"]["build"]["commands"] == ["npm run build"]
    assert document["frontend"]["artifacts"] == {"baseDirectory": "build", "files": ["**/*"]}


def test_on_the_emulator_amplify_is_planned_and_skipped(mocked: None) -> None:
    ctx = make_context(load_spec("prod", SETTINGS))
    planned = pointapp.plan(ctx, only="frontend", dependencies=ALONE)
    skipped = [c for c in planned.changes if c.args.get("skip")]
    assert [c.kind for c in skipped] == ["amplify-app", "amplify-branch", "amplify-branch", "amplify-build"]
    assert all("the emulator has no Amplify" in c.detail for c in skipped)
    outcome = pointapp.apply(ctx, planned)
    assert len(outcome.skipped) == 4 and [c.kind for c in outcome.applied] == ["secret"]
    assert not [c for c in ctx.calls if c.service == "amplify"]  # nothing pretends an Amplify call ran
    assert pointapp.plan(ctx, only="frontend", dependencies=ALONE).empty


def test_without_a_repository_there_is_nothing_to_do(ctx: Any) -> None:
    assert pointapp.plan(ctx, only="frontend", dependencies=ALONE).changes == []


def test_amplify_requests_on_aws(mocked: None) -> None:
    ctx = aws_context(load_spec("prod", SETTINGS))
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/acme/github-token", Value=TOKEN, Type="SecureString")
    amplify = stub(ctx, "amplify")
    amplify.add_response("list_apps", {"apps": []}, {})
    ctx.remember_outputs("service", {"alb/dns": "point-app-prod-alb-1.ap-northeast-1.elb.amazonaws.com"})
    planned = pointapp.plan(ctx, only="frontend", dependencies=ALONE)
    assert [c.kind for c in planned.changes] == ["secret", "amplify-app", "amplify-branch", "amplify-branch", "amplify-build"]
    alb = "http://point-app-prod-alb-1.ap-northeast-1.elb.amazonaws.com"
    app = {"appId": "d1", "appArn": "arn:aws:amplify:ap-northeast-1:123456789012:apps/d1", "name": "point-app-prod-frontend",
           "description": "", "repository": "https://github.com/acme/web", "platform": "WEB",
           "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z", "environmentVariables": {},
           "defaultDomain": "d1.amplifyapp.com", "enableBranchAutoBuild": False, "enableBasicAuth": False}
    amplify.add_response("create_app", {"app": app}, {
        "name": "point-app-prod-frontend", "description": ANY, "repository": "https://github.com/acme/web",
        "platform": "WEB", "accessToken": TOKEN, "buildSpec": frontend.build_spec(ctx.spec),
        "environmentVariables": {"REACT_APP_API_URL": "/api", "VITE_API_URL": "/api"}, "enableBranchAutoBuild": False,
        "customRules": [{"source": "/api/<*>", "target": f"{alb}/api/<*>", "status": "200"}, frontend.SPA_REWRITE],
        "tags": ANY})
    branch = {"branchArn": "arn:b", "branchName": "x", "description": "", "stage": "PRODUCTION", "displayName": "x",
              "enableNotification": False, "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z",
              "environmentVariables": {}, "enableAutoBuild": True, "customDomains": [], "framework": "React",
              "activeJobId": "0", "totalNumberOfJobs": "0", "enableBasicAuth": False, "ttl": "5",
              "enablePullRequestPreview": True}
    amplify.add_response("create_branch", {"branch": {**branch, "branchName": "main"}}, {
        "appId": "d1", "branchName": "main", "stage": "PRODUCTION", "framework": "React", "enableAutoBuild": True,
        "enablePullRequestPreview": True, "tags": ANY})
    captured: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        if params.get("branchName") == "staging":
            captured.update(params)

    ctx.client("amplify").meta.events.register("provide-client-params.amplify.CreateBranch", remember)
    amplify.add_response("create_branch", {"branch": {**branch, "branchName": "staging", "stage": "BETA"}}, {
        "appId": "d1", "branchName": "staging", "stage": "BETA", "framework": "React", "enableAutoBuild": True,
        "enablePullRequestPreview": False, "enableBasicAuth": True, "basicAuthCredentials": ANY, "tags": ANY})
    amplify.add_response("start_job", {"jobSummary": {"jobArn": "arn:j", "jobId": "1", "commitId": "HEAD",
                                                      "commitMessage": "", "commitTime": "2026-01-01T00:00:00Z",
                                                      "startTime": "2026-01-01T00:00:00Z", "status": "PENDING",
                                                      "jobType": "RELEASE"}},
                         {"appId": "d1", "branchName": "main", "jobType": "RELEASE", "jobReason": ANY})
    outcome = pointapp.apply(ctx, planned)
    amplify.assert_no_pending_responses()
    assert outcome.skipped == []
    user, password = base64.b64decode(captured["basicAuthCredentials"]).decode().split(":", 1)
    stored = json.loads(boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId="point-app-prod/frontend/staging-basic-auth")["SecretString"])
    assert (user, password) == (stored["username"], stored["password"]) and len(password) >= 24
    printed = "\n".join(ctx.lines)  # type: ignore[attr-defined]
    assert TOKEN not in printed and password not in printed and TOKEN not in str(planned)


def test_delete_app_on_aws() -> None:
    from pointapp.resources import Found

    ctx = aws_context(load_spec("prod", SETTINGS))
    amplify = stub(ctx, "amplify")
    amplify.add_response("delete_app", {"app": {"appId": "d1", "appArn": "a", "name": "n", "description": "",
                                                "repository": "r", "platform": "WEB", "createTime": "2026-01-01T00:00:00Z",
                                                "updateTime": "2026-01-01T00:00:00Z", "environmentVariables": {},
                                                "defaultDomain": "d", "enableBranchAutoBuild": False,
                                                "enableBasicAuth": False}}, {"appId": "d1"})
    assert frontend.App().delete(ctx, Found("amplify-app", "app", "d1", {}, {})) is None
    amplify.assert_no_pending_responses()


def test_repository_needs_a_token_source() -> None:
    from pointapp.errors import SpecError

    with pytest.raises(SpecError, match="frontend.access_token_parameter: is required with frontend.repository"):
        load_spec("prod", {"frontend": {"repository": "https://github.com/acme/web"}})


def test_the_app_calls_the_api_through_amplify_over_https_only() -> None:
    """No mixed content: the page calls the relative /api, which Amplify's rewrite passes on; with a
    certificate, the rewrite reaches the API by the domain the certificate names, over HTTPS."""
    (app,) = [d for d in frontend.desired(load_spec("prod", SETTINGS)) if d.kind == "amplify-app"]
    assert set(app.props["environment"].values()) == {"/api"}
    assert app.props["api_origin"] == Ref("runtime", "api_origin")
    secure = load_spec("prod", {**SETTINGS, "service": {"certificate_arn": CERTIFICATE},
                                "frontend": {**SETTINGS["frontend"], "api_domain": "api.example.com"}})
    (app,) = [d for d in frontend.desired(secure) if d.kind == "amplify-app"]
    assert frontend.custom_rules(app.props["api_origin"])[0] == {
        "source": "/api/<*>", "target": "https://api.example.com/api/<*>", "status": "200"}
    # Amplify applies rules top down and the single-page-app rule matches /api/... too
    assert [r["source"] for r in frontend.custom_rules("x")] == ["/api/<*>", frontend.SPA_REWRITE["source"]]


def test_with_a_certificate_the_api_domain_is_required() -> None:
    from pointapp.errors import SpecError

    with pytest.raises(SpecError, match="frontend.api_domain: is required with service.certificate_arn"):
        load_spec("prod", {**SETTINGS, "service": {"certificate_arn": CERTIFICATE}})


def test_an_app_made_before_the_rewrite_is_updated_on_aws(mocked: None) -> None:
    from pointapp.tags import ownership_tags

    ctx = aws_context(load_spec("prod", SETTINGS))
    ctx.remember_outputs("service", {"alb/dns": "alb-1.elb.amazonaws.com"})
    amplify = stub(ctx, "amplify", any_order=True)  # the app's branch and first build are read side by side
    app = {"appId": "d1", "appArn": "arn:aws:amplify:ap-northeast-1:123456789012:apps/d1", "name": "point-app-prod-frontend",
           "description": "", "repository": "https://github.com/acme/web", "platform": "WEB",
           "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z",
           "environmentVariables": {"REACT_APP_API_URL": "http://alb-1.elb.amazonaws.com",
                                    "VITE_API_URL": "http://alb-1.elb.amazonaws.com"},
           "defaultDomain": "d1.amplifyapp.com", "enableBranchAutoBuild": False, "enableBasicAuth": False,
           "buildSpec": frontend.build_spec(ctx.spec), "customRules": [frontend.SPA_REWRITE],
           "tags": ownership_tags(ctx.spec, "frontend", "app", "point-app-prod-frontend")}
    amplify.add_response("list_apps", {"apps": [app]}, {})
    amplify.add_response("list_branches", {"branches": []}, {"appId": "d1"})
    amplify.add_response("list_jobs", {"jobSummaries": []}, {"appId": "d1", "branchName": "main", "maxResults": 1})
    planned = pointapp.plan(ctx, only="frontend", dependencies=ALONE)
    (update,) = [c for c in planned.changes if c.action == "update"]
    assert update.kind == "amplify-app" and set(update.args["differences"]) == {"environment", "rewrites"}
    rules = [{"source": "/api/<*>", "target": "http://alb-1.elb.amazonaws.com/api/<*>", "status": "200"},
             frontend.SPA_REWRITE]
    amplify.add_response("update_app", {"app": {**app, "customRules": rules}}, {
        "appId": "d1", "buildSpec": frontend.build_spec(ctx.spec), "customRules": rules,
        "environmentVariables": {"REACT_APP_API_URL": "/api", "VITE_API_URL": "/api"}})
    outcome = pointapp.apply(ctx, Plan([update], ["frontend"], observed=planned.observed))
    assert [c.kind for c in outcome.applied] == ["amplify-app"]
    amplify.assert_no_pending_responses()
