"""The step list: every step of the runbook, in dependency order, in one place.

``up`` walks it forward, ``down`` backward, ``plan`` all of it, and each notebook is one entry.
A step declared here whose module is not yet part of this version is listed as not available.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pointapp.context import StepContext
from pointapp.errors import SpecError
from pointapp.names import built_names_from
from pointapp.plan import Change, Kept, Table
from pointapp.resources import ResourceStep
from pointapp.spec import Spec
from pointapp.target import discover_outputs_with


class Step(Protocol):
    """What every step module provides (see :mod:`pointapp.steps.network`)."""

    def discover(self, ctx: StepContext) -> Any: ...

    def plan(self, spec: Spec, observed: Any) -> list[Change]: ...

    def plan_destroy(self, spec: Spec, observed: Any, kept: Kept | None = None) -> list[Change]: ...

    def apply(self, ctx: StepContext, changes: Sequence[Change], observed: Any) -> list[str]: ...

    def resource_count(self, spec: Spec, observed: Any) -> int: ...

    def inventory(self, observed: Any) -> Table: ...

    def outputs(self, observed: Any) -> dict[str, str]: ...


@dataclass(frozen=True)
class StepInfo:
    name: str
    title: str
    depends_on: tuple[str, ...]
    notebook: str
    module: str | None

    @property
    def available(self) -> bool:
        return self.module is not None

    def load(self) -> Step:
        if self.module is None:
            raise SpecError("--only", f"step {self.name!r} is not available in this version; available: "
                            + ", ".join(s.name for s in STEPS if s.available))
        return importlib.import_module(self.module).STEP  # type: ignore[no-any-return]


STEPS: tuple[StepInfo, ...] = (
    StepInfo("network", "VPC, subnets, route tables, NAT gateway, security groups", (),
             "01_network.ipynb", "pointapp.steps.network"),
    StepInfo("domain", "Your Route 53 zone and the API's ACM certificate, validated by DNS", (), "02_domain.ipynb",
             "pointapp.steps.domain"),
    StepInfo("endpoints", "VPC endpoints for ECR, CloudWatch Logs, Secrets Manager and S3", ("network",),
             "04_endpoints.ipynb", "pointapp.steps.endpoints"),
    StepInfo("registry", "ECR repository for the API image", (), "05_registry.ipynb", "pointapp.steps.registry"),
    StepInfo("database", "RDS MySQL in the db subnets", ("network",), "06_database.ipynb", "pointapp.steps.database"),
    StepInfo("cache", "ElastiCache Redis in the cache subnets", ("network",), "07_cache.ipynb", "pointapp.steps.cache"),
    StepInfo("mail", "SES sender identity", ("domain",), "08_mail.ipynb", "pointapp.steps.mail"),
    StepInfo("service", "ECS on Fargate behind the load balancer",
             ("network", "domain", "endpoints", "registry", "database", "cache", "mail"),
             "09_service.ipynb", "pointapp.steps.service"),
    StepInfo("delivery", "CodeDeploy blue/green and CodePipeline", ("service", "registry"),
             "10_delivery.ipynb", "pointapp.steps.delivery"),
    StepInfo("bastion", "SSM-only bastion host in the management subnets", ("network",), "11_bastion.ipynb", "pointapp.steps.bastion"),
    StepInfo("frontend", "Amplify Hosting for the React frontend", ("service", "domain"), "12_frontend.ipynb", "pointapp.steps.frontend"),
)

STEP_NAMES = tuple(step.name for step in STEPS)


def steps_table() -> Table:
    """The steps in order, with what each depends on and its notebook."""
    rows = [(i + 1, s.name, s.title, ", ".join(s.depends_on) or "-", s.notebook,
             "yes" if s.available else "not yet") for i, s in enumerate(STEPS)]
    return Table(["#", "step", "what it builds", "depends on", "notebook", "available"], rows,
                 title="The steps of the runbook")


def get(name: str) -> StepInfo:
    for step in STEPS:
        if step.name == name:
            return step
    raise SpecError("--only", f"unknown step {name!r}; allowed: {', '.join(STEP_NAMES)}")


def parse_steps(only: str | Iterable[str] | None) -> list[str]:
    """Turn ``--only`` (``"a,b"`` or a list) into names; an unknown name is a :class:`SpecError`."""
    if only is None or only == "" or only == []:
        return []
    names = [n.strip() for n in only.split(",")] if isinstance(only, str) else [str(n).strip() for n in only]
    for name in names:
        get(name)
    return names


def select(only: str | Iterable[str] | None) -> tuple[list[StepInfo], list[StepInfo]]:
    """The steps to run in step-list order, and the declared steps skipped as not yet available.

    Naming a step that is not available is an error; with no selection every available step runs.
    """
    names = parse_steps(only)
    if names:
        chosen = [step for step in STEPS if step.name in names]
        for step in chosen:
            step.load()
        return chosen, []
    return [s for s in STEPS if s.available], [s for s in STEPS if not s.available]


def needed_by(chosen: Iterable[StepInfo]) -> list[StepInfo]:
    """The steps the ``chosen`` ones depend on, directly or through another, that are not among them
    (step-list order)."""
    chosen = list(chosen)
    needed: set[str] = set()
    waiting = [name for step in chosen for name in step.depends_on]
    while waiting:
        name = waiting.pop()
        if name not in needed:
            needed.add(name)
            waiting += get(name).depends_on
    return [step for step in STEPS if step.name in needed and step not in chosen]


def built_names(spec: Spec) -> Iterator[tuple[str, str]]:
    """Every (kind, name) pointapp would create for ``spec``: the resources of each step, and the network's
    flow logs and security groups (what the spec's name check, :func:`pointapp.names.check_names`, checks)."""
    from pointapp.steps import network

    for info in STEPS:
        module = info.load() if info.available and info.name != "network" else None
        if isinstance(module, ResourceStep):
            for desired in module.desired(spec):
                yield desired.kind, desired.name
    for desired in network.flow_log_resources(spec):
        yield desired.kind, desired.name
    zones = [f"zone-{i}" for i in range(spec.network.zones)]  # the names use the zones only in Name tags
    for group in network.layout(spec, "region", zones).groups:
        yield "security-group", group.name


built_names_from(built_names)


def discover_outputs(ctx: StepContext, step: str) -> dict[str, Any]:
    """What ``step`` exposes to the steps that use it, discovered now (a context asks when a step, or a tool,
    reads the outputs of one its run has not discovered yet)."""
    module = get(step).load()
    return module.outputs(module.discover(ctx))


discover_outputs_with(discover_outputs)

