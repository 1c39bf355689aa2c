"""The API's task definition: its container and RegisterTaskDefinition's request, one source for the
service step (which registers it), the delivery step's ``taskdef.json`` and the CloudFormation export.

Below the steps: what it needs of them (the database's and cache's endpoints) it reads as their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointapp.context import StepContext
from pointapp.kinds import LogGroup
from pointapp.names import configuration_set_name, repository_name
from pointapp.outputs import CACHE_ADDRESS, CACHE_PORT, DATA_ENDPOINTS, DATABASE_ADDRESS, DATABASE_PORT, DATABASE_SECRET
from pointapp.resources import Arn, arn_service, ignore_codes
from pointapp.spec import Spec
from pointapp.tags import aws_tags, ownership_tags

#: The step that registers the task definition (its revisions carry its ownership tags).
STEP_NAME = "service"

#: The writable scratch space of a container whose root file system is read-only (ECS.5): a task-level volume
#: with no host path, which Fargate backs with the task's ephemeral storage (ECS Developer Guide, "Fargate task
#: ephemeral storage" and "Bind mounts"), mounted where programs write temporary files.
SCRATCH_VOLUME = "tmp"
SCRATCH_PATH = "/tmp"

#: awslogs in non-blocking mode: a CloudWatch Logs outage fills an in-memory buffer (logs beyond it are lost)
#: instead of blocking the API's writes to stdout and stopping it. ECS's default is ``blocking`` unless the
#: account sets ``defaultLogDriverMode``; ``max-buffer-size`` defaults to 1m (ECS Developer Guide, "Send
#: Amazon ECS logs to CloudWatch", mode and max-buffer-size; What's New, 17 April 2025), read 1 December 2026.
LOG_MODE = "non-blocking"
LOG_BUFFER = "25m"


def container_definition(spec: Spec, image: str, log_group: str, region: str,
                         data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The API's container: port, logs to CloudWatch, secrets from Secrets Manager, a health check.

    ``data`` holds what the database, cache and mail steps expose: endpoints become environment
    variables, and the secret name ``database`` means the secret RDS keeps the master password in. The
    other secrets' ARNs are ``data["secret/<name>"]`` (:func:`secret_arns`): ECS takes a ``valueFrom``
    that is not an ARN for an SSM parameter's name, so a task naming a secret by name fails to start.
    """
    service = spec.service
    data = data or {}
    command = service.health_check_command.format(port=service.port, path=service.health_check_path)
    # The configuration set the API names in each send: it takes precedence over the identity's default
    # (SES developer guide, "Override the current default configuration set"), which is another environment's
    # when the identity is shared (mail.identity_owner), and the task role may use this one only.
    environment = {"MAIL_FROM": spec.mail.identity, "MAIL_CONFIGURATION_SET": configuration_set_name(spec),
                   "AWS_REGION": region,
                   "DB_HOST": data.get(DATABASE_ADDRESS.path), "DB_PORT": data.get(DATABASE_PORT.path),
                   "DB_NAME": spec.database.database_name, "REDIS_HOST": data.get(CACHE_ADDRESS.path),
                   # The RDS-managed secret, which the API reads again when a rotation changed the password.
                   "DB_SECRET_ARN": data.get(DATABASE_SECRET.path),
                   "REDIS_PORT": data.get(CACHE_PORT.path), "REDIS_TLS": "true"}

    def secret(name: str) -> Any:
        value = data.get(DATABASE_SECRET.path) if name == "database" else None
        value = value or data.get(f"secret/{name}")
        return value if isinstance(value, Mapping) or value is None else str(value)

    return {
        "name": service.container_name,
        "image": image,
        "essential": True,
        # In awsvpc mode hostPort is blank or the containerPort, and ECS stores and returns it as the containerPort
        # (ECS API reference, PortMapping; terraform-provider-aws #3401): sent so, the request is what AWS answers.
        "portMappings": [{"containerPort": service.port, "hostPort": service.port, "protocol": "tcp"}],
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": service.container_name,
            "mode": LOG_MODE, "max-buffer-size": LOG_BUFFER}},
        "environment": [{"name": k, "value": v if isinstance(v, Mapping) else str(v)}  # a mapping: a template's intrinsic
                        for k, v in sorted(environment.items()) if v is not None],
        "secrets": [{"name": variable, "valueFrom": secret(name)} for variable, name in sorted(service.secrets.items())],
        "healthCheck": {"command": ["CMD-SHELL", command], "interval": 30, "timeout": 5, "retries": 3,
                        "startPeriod": 60},
    }


def revision_tags(spec: Spec) -> dict[str, str]:
    """The ownership tags every revision of the API's family carries, however it is registered."""
    return ownership_tags(spec, STEP_NAME, "taskdef", spec.name("api"))


def revision_request(family: str, props: Mapping[str, Any], tags: Mapping[str, str], image: str | None) -> dict[str, Any]:
    """RegisterTaskDefinition's arguments for a revision of the family; ``image`` replaces the spec's image."""
    container = dict(props["container"])
    if image:
        container["image"] = image
    return dict(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu=str(props["cpu"]),
        memory=str(props["memory"]), executionRoleArn=props["execution_role"], taskRoleArn=props["task_role"],
        containerDefinitions=[container], volumes=[{"name": SCRATCH_VOLUME}], tags=aws_tags(tags, lower=True))


def data_outputs(ctx: StepContext) -> dict[str, Any]:
    """The endpoints and secret the database and cache steps expose, by :attr:`pointapp.outputs.Output.path`."""
    return {output.path: output.read(ctx) for output in DATA_ENDPOINTS}


def secret_arns(ctx: StepContext, spec: Spec) -> dict[str, str]:
    """The full ARN of every secret in ``service.secrets``, as ``secret/<name>``.

    A value that is an ARN (of Secrets Manager, or of an SSM parameter) is used as it is; a name is the
    secret ``<prefix>-<env>/<name>``, whose full ARN (with the six characters Secrets Manager adds)
    DescribeSecret gives. ECS wants the full ARN of a Secrets Manager secret in ``valueFrom`` (ECS API
    reference, ``Secret``); a partial ARN also matches, unless the name ends in a hyphen and six
    characters (Secrets Manager API reference, ``SecretId``). A secret that does not exist yet is named
    by its partial ARN, still an ARN, so ECS looks for it in Secrets Manager once it exists; the next
    ``up`` puts in the full ARN. ``database`` is the secret RDS keeps (its ARN is the database step's
    output); until the database exists it too is a partial ARN, and nothing is asked.
    """
    names = sorted(set(spec.service.secrets.values()))

    def load() -> dict[str, str]:
        arns: dict[str, str] = {}
        for name in names:
            secret_id = f"{spec.owner}/{name}"
            answer = None
            if arn_service(name):
                arns[f"secret/{name}"] = name
                continue
            if name != "database":
                answer = ignore_codes(ctx.client("secretsmanager").describe_secret, ["ResourceNotFoundException"],
                                      SecretId=secret_id)
            arns[f"secret/{name}"] = answer["ARN"] if answer else Arn("secretsmanager", f"secret:{secret_id}", None, None).on(ctx)
        return arns

    return dict(ctx.read_once(("secret-arns", spec.owner, tuple(names)), load)) if names else {}


def runtime_values(ctx: StepContext) -> dict[str, Any]:
    """What depends on the target: the container definition (image, log settings, data endpoints, secrets)."""
    spec = ctx.spec
    data = {**secret_arns(ctx, spec), **data_outputs(ctx)}
    return {"container": container_definition(spec, image_uri(ctx, spec), f"{LogGroup.prefix(spec)}api",
                                              ctx.target.region, data)}


def image_uri(ctx: StepContext, spec: Spec, tag: str | None = None) -> str:
    """The image CI pushes: ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>``."""
    return (f"{ctx.account}.dkr.ecr.{ctx.target.region}.amazonaws.com/{repository_name(spec)}:"
            f"{tag or spec.service.image_tag}")
