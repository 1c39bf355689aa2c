"""The ``frontend`` step: Amplify Hosting for the React frontend.

An Amplify app connected to the frontend's repository (the access token read at apply time from SSM
Parameter Store or Secrets Manager, never printed), with a build spec for a React build; the app calls
the API at the relative URL ``/api`` (an environment variable), which Amplify's reverse-proxy rewrite
passes to the load balancer, so the HTTPS page never requests plain HTTP (browsers block mixed content);
the ``main`` branch as production with pull-request previews, a ``staging`` branch behind basic
authentication (credentials generated and kept in Secrets Manager), and a first build started, since an
app created through the API does not build by itself.

The emulator has no Amplify: there the step shows its plan and the generated ``amplify.yml`` and says
that it skipped Amplify; the basic-auth secret is still made, since Secrets Manager exists there.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from pointapp.context import StepContext
from pointapp.diffs import Differences, changed
from pointapp.errors import PointappError
from pointapp.names import api_host, frontend_root, frontend_subdomains
from pointapp.outputs import LOAD_BALANCER_DNS
from pointapp.resources import Desired, Found, Kind, Ref, Request, ResourceStep, arn_service, client_error_code, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import KEY, add_tags, aws_tags, from_aws_tags, is_owned
from pointapp.typical import Typical

NAME = "frontend"
BASIC_AUTH_USER = "preview"


def build_spec(spec: Spec) -> str:
    """``amplify.yml``: install with ``npm ci``, build with ``npm run build``, publish the output folder."""
    document = {"version": 1, "frontend": {
        "phases": {"preBuild": {"commands": ["npm ci"]}, "build": {"commands": ["npm run build"]}},
        "artifacts": {"baseDirectory": spec.frontend.output_directory, "files": ["**/*"]},
        "cache": {"paths": ["node_modules/**/*"]},
    }}
    import yaml  # on first use: a command that builds no frontend writes no YAML

    return yaml.safe_dump(document, sort_keys=False)


def secret_name(spec: Spec) -> str:
    return f"{spec.owner}/frontend/{spec.frontend.staging_branch}-basic-auth"


class Secret(Kind):
    """A generated secret in Secrets Manager; its value is made once and never shown."""

    name = "secret"
    service = "secretsmanager"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        answer = ignore_codes(ctx.client("secretsmanager").describe_secret, ["ResourceNotFoundException"],
                              SecretId=secret_name(spec))
        if answer is None:
            return []
        raw = answer
        tags = from_aws_tags(raw.get("Tags"))
        if raw.get("DeletedDate") or not is_owned(tags, spec, step):
            return []
        return [Found(self.name, tags[KEY], raw["ARN"], tags, raw)]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """``props["value"]`` is the value the create generates."""
        return {"create_secret": dict(Name=desired.name, SecretString=props["value"], Description=desired.detail,
                                      Tags=aws_tags(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        value = json.dumps({"username": BASIC_AUTH_USER, "password": secrets.token_urlsafe(24)})
        raw = ctx.client("secretsmanager").create_secret(
            **self.request(ctx.spec, desired, {**props, "value": value}, tags)["create_secret"])
        return Found(self.name, desired.key, raw["ARN"], dict(tags), {"ARN": raw["ARN"], "Name": desired.name})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "secretsmanager", found.id, tags)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ctx.client("secretsmanager").delete_secret(SecretId=found.id, RecoveryWindowInDays=7)
        ctx.say(f"    {found.name} can be restored for 7 days")
        return None

    def describe(self, found: Found) -> str:
        return "generated credentials (value never shown)"


def _read_token(ctx: StepContext, where: str) -> str:
    """The repository access token, from Secrets Manager (an ARN or ``secretsmanager:NAME``) or SSM."""
    try:
        if (arn_service(where) == "secretsmanager" or where.startswith("secretsmanager:")):
            secret_id = where.split(":", 1)[1] if where.startswith("secretsmanager:") else where
            return str(ctx.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
        return str(ctx.client("ssm").get_parameter(Name=where, WithDecryption=True)["Parameter"]["Value"])
    except botocore.exceptions.ClientError as error:
        raise PointappError(f"frontend.access_token_parameter: cannot read {where} ({client_error_code(error)})") from None


def _basic_auth(ctx: StepContext, secret_arn: str) -> str:
    value = json.loads(ctx.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    return base64.b64encode(f"{value['username']}:{value['password']}".encode()).decode()


class AmplifyKind(Kind):
    service = "amplify"

    def unavailable(self, ctx: StepContext) -> str | None:
        return ctx.lacks("amplify", "Amplify")


class App(AmplifyKind):
    name = "amplify-app"

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        found = []
        for page in ctx.client("amplify").get_paginator("list_apps").paginate():
            for app in page["apps"]:
                tags = dict(app.get("tags") or {})
                if app["name"] == spec.name("frontend") and is_owned(tags, spec, step):
                    found.append(Found(self.name, tags[KEY], app["appId"], {**tags, "Name": app["name"]}, app))
        return found

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        changes = Differences()
        if raw.get("buildSpec") != props["build_spec"]:
            changes["build_spec"] = "amplify.yml"
        if raw.get("environmentVariables", {}) != props["environment"]:
            changes.add("environment", raw.get("environmentVariables", {}), props["environment"])
        current = [{k: rule.get(k) for k in ("source", "target", "status")} for rule in raw.get("customRules") or []]
        if current != custom_rules(props["api_origin"]):
            changes["rewrites"] = f"/api/<*> -> {props['api_origin']}/api/<*>, then the single-page app"
        if raw.get("repository") != props["repository"]:
            changes.add("repository", raw.get("repository"), props["repository"])
        return changes

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """``props["token"]`` is the repository token the create reads."""
        return {"create_app": dict(
            name=desired.name, description=desired.detail[:1000], repository=props["repository"], platform="WEB",
            accessToken=props["token"], buildSpec=props["build_spec"], environmentVariables=dict(props["environment"]),
            enableBranchAutoBuild=False, customRules=custom_rules(props["api_origin"]), tags=dict(tags))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        token = _read_token(ctx, props["token_from"])
        app = ctx.client("amplify").create_app(
            **self.request(ctx.spec, desired, {**props, "token": token}, tags)["create_app"])["app"]
        return Found(self.name, desired.key, app["appId"], dict(tags), app)

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "amplify", found.raw["appArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        args: dict[str, Any] = {"appId": found.id, "buildSpec": props["build_spec"],
                                "environmentVariables": dict(props["environment"]),
                                "customRules": custom_rules(props["api_origin"])}
        if "repository" in changes:
            args.update(repository=props["repository"], accessToken=_read_token(ctx, props["token_from"]))
        ctx.client("amplify").update_app(**args)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ctx.client("amplify").delete_app(appId=found.id)
        return None

    def describe(self, found: Found) -> str:
        return f"{found.raw.get('repository')} -> https://{found.raw.get('defaultDomain')}"


SPA_REWRITE = {"source": "</^[^.]+$|\\.(?!(css|gif|ico|jpg|js|png|txt|svg|woff|woff2|ttf|map|json|webp)$)([^.]+$)/>",
               "target": "/index.html", "status": "200"}

#: Where the app calls the API: a path of the site itself, which :func:`api_rewrite` passes on.
API_PATH = "/api"


def api_rewrite(origin: str) -> dict[str, str]:
    """Amplify's reverse-proxy rewrite (status 200) of ``/api/<*>`` to the same path at ``origin``: the
    browser talks HTTPS to Amplify only (Amplify Hosting user guide, "Reverse proxy rewrite")."""
    return {"source": f"{API_PATH}/<*>", "target": f"{origin}{API_PATH}/<*>", "status": "200"}


def custom_rules(origin: str) -> list[dict[str, str]]:
    """The app's rewrites. Amplify applies them from the top down (user guide, "Understanding the order of
    redirects"), and the single-page-app rule matches ``/api/...`` too: the API's rule comes first."""
    return [api_rewrite(origin), SPA_REWRITE]


class Branch(AmplifyKind):
    name = "amplify-branch"
    finds_after = ("amplify-app",)

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        app = known.get("app")
        if app is None:
            return []
        found = []
        for page in ctx.client("amplify").get_paginator("list_branches").paginate(appId=app.id):
            for branch in page["branches"]:
                tags = dict(branch.get("tags") or {})
                if is_owned(tags, spec, step):
                    found.append(Found(self.name, tags[KEY], branch["branchName"], {**tags, "Name": branch["branchName"]},
                                       {**branch, "appId": app.id}))
        return found

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        raw = found.raw
        current = {"stage": raw.get("stage"), "previews": bool(raw.get("enablePullRequestPreview")),
                   "basic_auth": bool(raw.get("enableBasicAuth"))}
        wanted = {"stage": props["stage"], "previews": props["previews"], "basic_auth": bool(props.get("basic_auth"))}
        return changed(current, wanted)

    @staticmethod
    def _settings(props: Mapping[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = {"stage": props["stage"], "framework": "React", "enableAutoBuild": True,
                                    "enablePullRequestPreview": props["previews"]}
        if props.get("basic_auth"):
            settings.update(enableBasicAuth=True, basicAuthCredentials=props["credentials"])
        return settings

    @staticmethod
    def _with_credentials(ctx: StepContext, props: Mapping[str, Any]) -> dict[str, Any]:
        """The props and, for a branch behind basic auth, the credentials read from its secret."""
        return {**props, "credentials": _basic_auth(ctx, props["basic_auth"])} if props.get("basic_auth") else dict(props)

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """``props["credentials"]`` are the basic-auth credentials the create reads from the secret."""
        return {"create_branch": dict(appId=props["app"], branchName=desired.name, tags=dict(tags), **self._settings(props))}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        branch = ctx.client("amplify").create_branch(
            **self.request(ctx.spec, desired, self._with_credentials(ctx, props), tags)["create_branch"])["branch"]
        return Found(self.name, desired.key, desired.name, dict(tags), {**branch, "appId": props["app"]})

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        add_tags(ctx, "amplify", found.raw["branchArn"], tags)

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("amplify").update_branch(appId=props["app"], branchName=found.id, **self._settings(self._with_credentials(ctx, props)))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # deleted with the app

    def describe(self, found: Found) -> str:
        raw = found.raw
        auth = "basic auth" if raw.get("enableBasicAuth") else "public"
        previews = "PR previews" if raw.get("enablePullRequestPreview") else "no previews"
        return f"{raw.get('stage')}, {auth}, {previews}"


class FirstBuild(AmplifyKind):
    """The first build of the production branch: an app created through the API does not build by itself."""

    name = "amplify-build"
    finds_after = ("amplify-app",)
    # The build runs on Amplify while pointapp goes on: nothing here waits for it.
    typical = Typical("amplify-build", 240, "the frontend's first Amplify build and deploy",
                      "AWS Amplify Hosting User Guide, build and deploy; no botocore waiter")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        app = known.get("app")
        if app is None:
            return []
        jobs = ctx.client("amplify").list_jobs(appId=app.id, branchName=spec.frontend.production_branch,
                                               maxResults=1)["jobSummaries"]
        return [Found(self.name, "first-build", jobs[0]["jobId"], {**app.tags, KEY: "first-build"}, jobs[0])] if jobs else []

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"start_job": dict(appId=props["app"], branchName=props["branch"], jobType="RELEASE",
                                  jobReason="first build, started by pointapp")}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        job = ctx.client("amplify").start_job(**self.request(ctx.spec, desired, props, tags)["start_job"])["jobSummary"]
        ctx.say(f"    build {job['jobId']} of {props['branch']} started; Amplify builds later pushes by itself")
        return Found(self.name, desired.key, job["jobId"], dict(tags), job)

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        return None  # a build is history, removed with the app

    def describe(self, found: Found) -> str:
        return f"job {found.id}: {found.raw.get('status')}"


class DomainAssociation(AmplifyKind):
    """The frontend on the user's domain: an Amplify custom domain over the app's branches. With the zone in Route 53
    in this account, Amplify writes its own verification and subdomain records into it and issues its own (Amplify
    managed) certificate (Amplify Hosting User Guide, "Adding a custom domain managed by Amazon Route 53"). Those
    records are Amplify's, not pointapp's (they carry no ownership record): ``down`` deletes the association and
    says which names to look at, since the API reference does not say that Amplify removes them with it."""

    name = "amplify-domain"
    finds_after = ("amplify-app",)
    # Amplify goes on by itself; nothing waits for it (so it is no wait of the schedule either).
    activation = Typical("amplify-domain", 900, "Amplify verifying the custom domain and issuing its certificate",
                      "AWS Amplify Hosting User Guide, custom domains (SSL/TLS creation, then domain activation: "
                      "usually minutes, up to 24 hours for DNS); no botocore waiter")

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        app = known.get("app")
        root = frontend_root(spec)
        if app is None or root is None:
            return []
        answer = ignore_codes(ctx.client("amplify").get_domain_association, ["NotFoundException"], appId=app.id,
                              domainName=root)
        if answer is None:
            return []  # the association has no tags: it is the app's, which is ours
        association = answer["domainAssociation"]
        return [Found(self.name, "custom-domain", root, {**app.tags, KEY: "custom-domain", "Name": root},
                      {**association, "appId": app.id})]

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        current = sorted((s["subDomainSetting"]["prefix"], s["subDomainSetting"]["branchName"])
                         for s in found.raw.get("subDomains", []))
        return changed({"subdomains": current}, {"subdomains": sorted(map(tuple, props["subdomains"]))})

    @staticmethod
    def _settings(props: Mapping[str, Any]) -> list[dict[str, str]]:
        return [{"prefix": prefix, "branchName": branch} for prefix, branch in props["subdomains"]]

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        return {"create_domain_association": dict(
            appId=props["app"], domainName=desired.name, enableAutoSubDomain=False,
            subDomainSettings=self._settings(props), certificateSettings={"type": "AMPLIFY_MANAGED"})}

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        association = ctx.client("amplify").create_domain_association(
            **self.request(ctx.spec, desired, props, tags)["create_domain_association"])["domainAssociation"]
        ctx.say(f"    Amplify verifies {desired.name} and issues its certificate by itself (usually {self.activation.spoken}); "
                "pointapp does not wait")
        return Found(self.name, desired.key, desired.name, dict(tags), {**association, "appId": props["app"]})

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        ctx.client("amplify").update_domain_association(appId=props["app"], domainName=found.id, enableAutoSubDomain=False,
                                                        subDomainSettings=self._settings(props))

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        ignore_codes(ctx.client("amplify").delete_domain_association, ["NotFoundException"], appId=found.raw["appId"],
                     domainName=found.id)
        ctx.say(f"    Amplify wrote the records of {found.id} into your zone itself: check that they went with it")
        return None

    def describe(self, found: Found) -> str:
        names = ", ".join(f"{s['subDomainSetting']['prefix'] or '(apex)'} -> {s['subDomainSetting']['branchName']}"
                          for s in found.raw.get("subDomains", []))
        return f"{found.raw.get('domainStatus')}: {names}"


def desired(spec: Spec) -> list[Desired]:
    frontend = spec.frontend
    if not frontend.repository:
        return []
    api = frontend.api_domain or api_host(spec)  # with a domain, the API's own HTTPS name
    origin = f"https://{api}" if api else Ref("runtime", "api_origin")
    root = frontend_root(spec)
    custom = [Desired("amplify-domain", "custom-domain", root, {
        "app": Ref(NAME, "app"), "subdomains": [list(pair) for pair in frontend_subdomains(spec)]},
        ", ".join(f"{prefix + '.' if prefix else ''}{root} -> {branch}" for prefix, branch in frontend_subdomains(spec))
        + " (Amplify-managed certificate)")] if root else []
    return [
        Desired("secret", "basic-auth", secret_name(spec), {},
                f"basic-auth credentials of the {frontend.staging_branch} branch (generated, never shown)"),
        Desired("amplify-app", "app", spec.name("frontend"), {
            "repository": frontend.repository, "token_from": frontend.access_token_parameter,
            "build_spec": build_spec(spec), "api_origin": origin,
            "environment": {"REACT_APP_API_URL": API_PATH, "VITE_API_URL": API_PATH}},
            f"React app from {frontend.repository}, amplify.yml build, {API_PATH} passed on to the API"),
        Desired("amplify-branch", "branch/production", frontend.production_branch, {
            "app": Ref(NAME, "app"), "stage": "PRODUCTION", "previews": frontend.pull_request_previews},
            "production, pull-request previews on" if frontend.pull_request_previews else "production"),
        Desired("amplify-branch", "branch/staging", frontend.staging_branch, {
            "app": Ref(NAME, "app"), "stage": "BETA", "previews": False, "basic_auth": Ref(NAME, "basic-auth")},
            "staging behind basic authentication"),
        Desired("amplify-build", "first-build", f"first build of {frontend.production_branch}", {
            "app": Ref(NAME, "app"), "branch": frontend.production_branch}, "start_job: Amplify does not build an app "
                                                                            "created through the API by itself"),
        *custom,
    ]


def runtime_values(ctx: StepContext) -> dict[str, Any]:
    """Where the rewrite sends ``/api``: the load balancer, by its DNS name over HTTP (with a certificate,
    the spec check asks for ``frontend.api_domain``, which the certificate names, and that is used)."""
    dns = LOAD_BALANCER_DNS.read(ctx)
    return {"api_origin": f"http://{dns}"} if dns else {}


STEP = ResourceStep(NAME, [Secret(), App(), Branch(), FirstBuild(), DomainAssociation()], desired, runtime=runtime_values)
