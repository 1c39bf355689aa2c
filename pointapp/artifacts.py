"""The release artifacts, generated from the spec: ``taskdef.json``, ``appspec.yaml`` and the GitHub
Actions workflow that builds and pushes the image.

CodePipeline's ``CodeDeployToECS`` action replaces ``<IMAGE1_NAME>`` in ``taskdef.json`` with the image
pushed to ECR, registers that task definition, and replaces ``<TASK_DEFINITION>`` in ``appspec.yaml``
with the new revision's ARN.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointapp.names import repository_name
from pointapp.spec import Spec
from pointapp.taskdef import revision_request, revision_tags

IMAGE_PLACEHOLDER = "<IMAGE1_NAME>"
TASK_DEFINITION_PLACEHOLDER = "<TASK_DEFINITION>"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
ARTIFACTS_KEY = "release/artifacts.zip"


def task_definition(spec: Spec, container: dict[str, Any], execution_role: str, task_role: str,
                    image: str = IMAGE_PLACEHOLDER) -> dict[str, Any]:
    """The task definition as CodeDeploy registers it: the container with ``image``, and the ownership tags, so the
    revisions a release registers are the service's like the others.

    ``CodeDeployToECS`` registers the file as a new revision; it is RegisterTaskDefinition's input, whose ``tags``
    are ECS's lower-case ``key``/``value`` pairs (ECS API reference, RegisterTaskDefinition), and tagging on create
    needs ``ecs:TagResource``, which the pipeline role has. The action reference does not list the fields it passes
    on: a revision registered without the tags still belongs to the family's owner (``service.TaskDefinition``).
    """
    props = {"cpu": spec.service.cpu, "memory": spec.service.memory, "execution_role": execution_role,
             "task_role": task_role, "container": container}
    return revision_request(spec.name("api"), props, revision_tags(spec), image)  # the step's own request


def appspec(spec: Spec, task_definition_arn: str = TASK_DEFINITION_PLACEHOLDER) -> dict[str, Any]:
    """The AppSpec of an ECS blue/green deployment: which service, container and port to switch."""
    return {"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": task_definition_arn,
        "LoadBalancerInfo": {"ContainerName": spec.service.container_name, "ContainerPort": spec.service.port},
    }}}]}


def appspec_text(spec: Spec, task_definition_arn: str = TASK_DEFINITION_PLACEHOLDER) -> str:
    import yaml  # on first use: most commands write no YAML

    return yaml.safe_dump(appspec(spec, task_definition_arn), sort_keys=False)


@dataclass(frozen=True)
class Action:
    """A GitHub Action the workflow uses: pinned to a full commit hash where that hash was verified to be the
    release, else on its release tag (a hash is never guessed; README "Delivery" says how to pin one)."""

    repository: str  #: owner/name
    version: str  #: the release: the pin's comment, or the tag itself when there is no verified hash
    commit: str = ""  #: the release's full commit hash, or "" when it could not be verified
    source: str = ""  #: where the hash was verified

    @property
    def uses(self) -> str:
        return f"{self.repository}@{self.commit or self.version}"


#: The actions, by what the workflow does with them. zizmor (tests/test_release.py) checks the workflow; the
#: tagged ones are the exceptions it is told about (TAGGED) until someone pins them.
CHECKOUT = Action("actions/checkout", "v4")  # no release commit of v4.x could be verified from its repository
CREDENTIALS = Action("aws-actions/configure-aws-credentials", "v4")  # likewise
ECR_LOGIN = Action("aws-actions/amazon-ecr-login", "v2.0.1", "062b18b96a7aff071d4dc91bc00c4c1a7945b076",
                   source="aws-actions/amazon-ecr-login at this commit: package.json says version 2.0.1")
ACTIONS = (CHECKOUT, CREDENTIALS, ECR_LOGIN)
#: Why the release job holds each permission (written beside it in the workflow).
PERMISSIONS = {"id-token": ("write", "the OIDC token the job assumes the release role with"),
               "contents": ("read", "the checkout of the repository")}
TAGGED = tuple(action for action in ACTIONS if not action.commit)


def workflow(spec: Spec, role_arn: str, region: str) -> dict[str, Any]:
    """A GitHub Actions workflow: on a merge to the branch, build, tag with the SHA and ``latest``, push.

    It assumes ``role_arn`` through GitHub's OIDC provider: no long-lived AWS keys in the repository.
    The SHA tag is pushed first, ``latest`` last, since pushing ``latest`` starts the release pipeline.
    The workflow grants nothing; its one job gets what it needs: ``id-token: write`` for the OIDC token and
    ``contents: read`` for the checkout, which keeps no credentials in the work tree (``persist-credentials``).
    """
    branch = spec.delivery.github_branch
    return {
        "name": f"Release the API ({spec.environment})",
        "on": {"push": {"branches": [branch]}},
        "permissions": {},
        "concurrency": {"group": f"release-{spec.environment}", "cancel-in-progress": False},
        "jobs": {"image": {
            "name": "Build and push the image",
            "runs-on": "ubuntu-latest",
            "permissions": {name: access for name, (access, _) in PERMISSIONS.items()},
            "steps": [
                {"uses": CHECKOUT.uses, "with": {"persist-credentials": False}},
                {"name": "Assume the release role", "uses": CREDENTIALS.uses,
                 "with": {"role-to-assume": role_arn, "aws-region": region}},
                {"name": "Log in to ECR", "id": "ecr", "uses": ECR_LOGIN.uses},
                {"name": "Build, tag and push", "env": {
                    "IMAGE": "${{ steps.ecr.outputs.registry }}/" + repository_name(spec), "SHA": "${{ github.sha }}"},
                 "run": "\n".join([
                     'docker build -t "$IMAGE:$SHA" -t "$IMAGE:latest" .',
                     'docker push "$IMAGE:$SHA"',
                     'docker push "$IMAGE:latest"', ""])},
            ],
        }},
    }


@functools.lru_cache(maxsize=1)
def _dumper() -> Any:
    """A YAML dumper writing multi-line strings as literal blocks (``run: |``), as people write workflows."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)

    Dumper.add_representer(str, string)
    return Dumper


def workflow_text(spec: Spec, role_arn: str, region: str) -> str:
    where = spec.delivery.github_repository or "the application repository"
    header = f"# Generated by pointapp for {spec.owner}. Copy it to .github/workflows/ in {where}.\n"
    import yaml

    text = yaml.dump(workflow(spec, role_arn, region), Dumper=_dumper(), sort_keys=False, width=120)
    for action in ACTIONS:  # a pinned action names its release in a comment, as Dependabot writes it
        if action.commit:
            text = text.replace(f"uses: {action.uses}\n", f"uses: {action.uses} # {action.version}\n")
    for name, (access, reason) in PERMISSIONS.items():
        text = text.replace(f"      {name}: {access}\n", f"      {name}: {access}  # {reason}\n")
    return header + text


def taskdef_text(taskdef: dict[str, Any]) -> str:
    """``taskdef.json`` as written to a file and to the zip."""
    return json.dumps(taskdef, indent=2, sort_keys=True) + "\n"


def artifacts_zip(taskdef: dict[str, Any], appspec_yaml: str) -> bytes:
    """``taskdef.json`` and ``appspec.yaml`` in a zip, byte-identical for the same input (fixed dates)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("taskdef.json", taskdef_text(taskdef)), ("appspec.yaml", appspec_yaml)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def write_delivery(directory: str | Path, spec: Spec, taskdef: dict[str, Any], role_arn: str, region: str) -> list[Path]:
    """Write ``taskdef.json``, ``appspec.yaml``, the two zipped as ``artifacts.zip`` (for the artifact bucket,
    key ``release/artifacts.zip``) and ``.github/workflows/release-<env>.yml`` into ``directory``."""
    root = Path(directory)
    workflow_path = root / ".github" / "workflows" / f"release-{spec.environment}.yml"
    workflow_path.parent.mkdir(parents=True, exist_ok=True)
    files: dict[Path, str | bytes] = {
        root / "taskdef.json": taskdef_text(taskdef), root / "appspec.yaml": appspec_text(spec),
        root / "artifacts.zip": artifacts_zip(taskdef, appspec_text(spec)),
        workflow_path: workflow_text(spec, role_arn, region)}
    for path, content in files.items():
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return list(files)
