"""The values steps hand to one another, each named once here.

An :class:`Output` names the step that writes it, the resource (its key in that step) and the value
(``name``; none for the resource's id). The writing step's desired resource takes :attr:`Output.resource`
as its key and its kind returns the value under :attr:`Output.name`; a reader finds it under
:attr:`Output.key` among the step's outputs (:meth:`Output.read`), or under :attr:`Output.path` where the
step is part of the name (the service's data endpoints, the CloudFormation exports).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pointapp.context import StepContext


@dataclass(frozen=True)
class Output:
    """One value a step exposes: ``Output("database", "instance", "address")``."""

    step: str
    resource: str
    name: str = ""  # "": the resource's id

    @property
    def key(self) -> str:
        """Its key among the step's outputs: ``instance/address``."""
        return f"{self.resource}/{self.name}" if self.name else self.resource

    @property
    def path(self) -> str:
        """Its key with the step: ``database/instance/address``."""
        return f"{self.step}/{self.key}"

    def value(self, name: str) -> Output:
        """The value ``name`` of this resource (beside its id)."""
        return replace(self, name=name)

    def read(self, ctx: StepContext, default: Any = None) -> Any:
        """Its value on the target of ``ctx`` (the step's outputs, discovered once), or ``default``."""
        return ctx.outputs(self.step).get(self.key, default)


DATABASE_INSTANCE = Output("database", "instance")
DATABASE_ADDRESS = DATABASE_INSTANCE.value("address")
DATABASE_PORT = DATABASE_INSTANCE.value("port")
DATABASE_SECRET = DATABASE_INSTANCE.value("secret")  # the secret RDS keeps the master password in

CACHE_GROUP = Output("cache", "replication-group")
CACHE_ADDRESS = CACHE_GROUP.value("address")
CACHE_PORT = CACHE_GROUP.value("port")

MAIL_IDENTITY = Output("mail", "identity")
MAIL_DKIM_TOKENS = MAIL_IDENTITY.value("tokens")

KMS_KEY = Output("network", "kms/key")  # the environment's customer-managed key, by ARN (security.kms_key)

LOAD_BALANCER = Output("service", "alb")
LOAD_BALANCER_DNS = LOAD_BALANCER.value("dns")
PRODUCTION_LISTENER = Output("service", "listener/production")
TEST_LISTENER = Output("service", "listener/test")

BASTION_INSTANCE = Output("bastion", "instance")

REPOSITORY = Output("registry", "repository")  # the ECR repository the images are pushed to

#: What the service's container needs of MySQL and Redis: its endpoints and the database's secret.
DATA_ENDPOINTS = (DATABASE_ADDRESS, DATABASE_PORT, DATABASE_SECRET, CACHE_ADDRESS, CACHE_PORT)

#: The user's Route 53 hosted zone (looked up, never made) and the API's ACM certificate, once ACM issued it.
DOMAIN_ZONE = Output("domain", "zone")
CERTIFICATE = Output("domain", "validation")
