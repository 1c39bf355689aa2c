"""Plan, apply and destroy over the step registry. The CLI and the notebooks call these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pointapp import steps as registry
from pointapp.plan import Outcome, Plan, Table
from pointapp.target import Context


def discover(ctx: Context, only: str | Iterable[str] | None = None) -> dict[str, Any]:
    """What each selected step owns, keyed by step name (registry order, so a step's users reuse it)."""
    chosen, _ = registry.select(only)
    observed = {}
    for step in chosen:
        module = step.load()
        observed[step.name] = module.discover(ctx)
        ctx.remember_outputs(step.name, module.outputs(observed[step.name]))
    return observed


def plan(ctx: Context, only: str | Iterable[str] | None = None) -> Plan:
    """Discover, then plan every selected step (registry order). Makes no change."""
    chosen, skipped = registry.select(only)
    observed = discover(ctx, [step.name for step in chosen])
    changes = [change for step in chosen for change in step.load().plan(ctx.spec, observed[step.name])]
    result = Plan(changes, [step.name for step in chosen], observed=observed)
    if skipped:
        result.notes.append("Not available in this version yet: " + ", ".join(s.name for s in skipped) + ".")
    return result


def plan_destroy(ctx: Context, only: str | Iterable[str] | None = None) -> Plan:
    """Everything the selected steps own, to be deleted in reverse registry order."""
    chosen, _ = registry.select(only)
    observed = discover(ctx, [step.name for step in chosen])
    chosen = list(reversed(chosen))
    changes = [change for step in chosen for change in step.load().plan_destroy(ctx.spec, observed[step.name])]
    return Plan(changes, [step.name for step in chosen], destroy=True, observed=observed)


def apply(ctx: Context, planned: Plan) -> Outcome:
    """Carry out a plan made by :func:`plan` or :func:`plan_destroy` on the same context.

    On real AWS this refuses unless the context was confirmed (``yes``).
    """
    observed = planned.observed
    warnings: list[str] = []
    skipped_before = len(ctx.skipped)
    if not planned.empty:
        ctx.require_confirmation("pointapp down" if planned.destroy else "pointapp up")
    for name in planned.steps:
        changes = planned.for_step(name)
        if changes:
            warnings += registry.get(name).load().apply(ctx, changes, observed[name])
    unchanged = 0
    if not planned.destroy:
        wanted = sum(registry.get(name).load().resource_count(ctx.spec, observed[name]) for name in planned.steps)
        unchanged = max(wanted - len({(c.step, c.key) for c in planned.changes}), 0)
    skipped = ctx.skipped[skipped_before:]
    return Outcome([c for c in planned.changes if c not in skipped], unchanged, warnings, skipped)


def up(ctx: Context, only: str | Iterable[str] | None = None) -> Outcome:
    """Plan and apply the selected steps."""
    return apply(ctx, plan(ctx, only))


def down(ctx: Context, only: str | Iterable[str] | None = None) -> Outcome:
    """Destroy what the selected steps own, then check what is left (and say why)."""
    return finish_destroy(ctx, apply(ctx, plan_destroy(ctx, only)), only)


def finish_destroy(ctx: Context, outcome: Outcome, only: str | Iterable[str] | None = None) -> Outcome:
    """The final check of a destroy: discover again and list what pointapp still owns."""
    for step in registry.STEPS:
        ctx.forget_outputs(step.name)
    outcome.remaining = plan_destroy(ctx, only).changes
    return outcome


def status(ctx: Context) -> Table:
    """Each step's state on the target: done, drifted, or not built; with a link to its notebook."""
    planned = plan(ctx)
    rows = []
    for step in registry.STEPS:
        module = step.load()
        owned = len(module.inventory(planned.observed[step.name]))
        changes = [c for c in planned.for_step(step.name) if not c.args.get("skip")]
        state = "not built" if not owned else ("drifted" if changes else "done")
        if owned and changes and all(c.action == "create" for c in changes):
            state = "partly built"
        if not owned and not changes:
            state = "nothing to build" if not module.resource_count(ctx.spec, planned.observed[step.name]) else "not built"
        rows.append((step.name, state, f"{owned} owned, {len(changes)} to change",
                     f"[{step.notebook}]({step.notebook})"))
    return Table(["step", "status", "resources", "notebook"], rows, title=f"{ctx.spec.owner} on {ctx.target.describe()}")


def inventory(ctx: Context, step: str = "network") -> Table:
    """What one step owns now, as a table."""
    info = registry.get(step)
    module = info.load()
    return module.inventory(module.discover(ctx))
