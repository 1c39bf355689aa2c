"""Plan, apply and destroy over the step list. The CLI and the notebooks call these.

The engine is the one writer of the outputs steps expose to each other: after each discover and each
apply of a step, it records what the step exposes now on the context (and forgets them after a failed apply).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pointapp import steps
from pointapp.concurrency import READS_AT_ONCE, run_graph
from pointapp.errors import DependencyError
from pointapp.plan import Change, Link, Outcome, Plan, Table, stood_on
from pointapp.spec import Spec
from pointapp.steps import StepInfo
from pointapp.target import Context


def discover(ctx: Context, only: str | Iterable[str] | None = None) -> dict[str, Any]:
    """What each selected step owns, keyed by step name (step-list order).

    The steps are read side by side (:data:`pointapp.concurrency.READS_AT_ONCE` requests at a time): a
    step that needs the outputs of another one being read waits for them (:meth:`Context.outputs`), so
    each step is read once.
    """
    chosen, _ = steps.select(only)
    ctx.forget_reads()  # what changed outside this run since an earlier discovery is seen; shared again from here
    held = {step.name: ctx.outputs_lock(step.name) for step in chosen}
    for lock in held.values():
        lock.acquire()  # until the step's outputs are known: its users wait instead of reading it again

    def read(step: Any) -> Any:
        try:
            observed = step.load().discover(ctx)
            ctx.remember_outputs(step.name, step.load().outputs(observed))
            return observed
        finally:
            held.pop(step.name).release()

    try:
        # Started in step-list order, each step after those it depends on: a step that waits for another's
        # outputs only ever waits for one already being read.
        observed = run_graph([(step.name, ctx.as_this_work(functools.partial(read, step))) for step in chosen],
                             {}, READS_AT_ONCE)
        return {step.name: observed[step.name] for step in chosen}
    finally:
        for lock in list(held.values()):  # the steps a failure left unread
            lock.release()


def apply_step(ctx: Context, name: str, changes: list[Change], observed: Any) -> list[str]:
    """Apply ``changes`` of step ``name`` and record what the step exposes now (its observed state, which
    the apply brought up to date); after a failure, forget it, so the steps that use it discover it afresh."""
    module = steps.get(name).load()
    try:
        warnings = module.apply(ctx, changes, observed)
    except BaseException:
        ctx.forget_outputs(name)
        raise
    ctx.remember_outputs(name, module.outputs(observed))
    return warnings


def plan(ctx: Context, only: str | Iterable[str] | None = None, *,
         dependencies: Literal["refuse", "warn", "ignore"] = "refuse") -> Plan:
    """Discover, then plan every selected step (step-list order). Makes no change.

    With ``only``, each step the selected ones depend on (directly or through another) and that is not
    selected must be ready: nothing pending for it but what the target cannot do (done, or nothing to build).
    Those steps are discovered in the same pass as the selected ones, which read their outputs anyway. When
    one is not ready, ``dependencies`` says what happens: ``"refuse"`` raises :class:`DependencyError`
    (one line naming it and its notebook) before anything is changed; ``"warn"`` plans anyway, with that
    line in :attr:`Plan.unready`; ``"ignore"`` does not look at them. A partly built one (only creates
    pending) stops only selected steps that have something to create (see :func:`dependency_error`).
    """
    chosen, skipped = steps.select(only)
    needed = steps.needed_by(chosen) if only and dependencies != "ignore" else []
    observed = discover(ctx, [step.name for step in steps.STEPS if step in chosen or step in needed])
    changes = [change for step in chosen for change in step.load().plan(ctx.spec, observed[step.name])]
    creates = any(change.action == "create" and not change.args.get("skip") for change in changes)
    unready = dependency_error(ctx.spec, chosen, {step.name: observed[step.name] for step in needed}, creates)
    if unready is not None and dependencies == "refuse":
        raise unready
    result = Plan(changes, [step.name for step in chosen], observed={step.name: observed[step.name] for step in chosen},
                  unready=str(unready or ""))
    if skipped:
        result.notes.append("Not available in this version yet: " + ", ".join(s.name for s in skipped) + ".")
    return result


#: What a step's status says, and whether the steps that need it may go on.
DONE, DRIFTED, PARTLY_BUILT, NOT_BUILT, NOTHING_TO_BUILD = "done", "drifted", "partly built", "not built", "nothing to build"
READY = (DONE, NOTHING_TO_BUILD)


def step_state(spec: Spec, name: str, observed: Any, changes: Sequence[Change] | None = None) -> tuple[str, int, list[Change]]:
    """A step's state on the target from its discovery: done, drifted, partly built, not built, or nothing to
    build; with how many resources it owns and its pending changes (its plan, ``changes`` when already made,
    without what the target cannot do)."""
    module = steps.get(name).load()
    owned = len(module.inventory(observed))
    planned = module.plan(spec, observed) if changes is None else changes
    pending = [change for change in planned if not change.args.get("skip")]
    state = NOT_BUILT if not owned else (DRIFTED if pending else DONE)
    if owned and pending and all(change.action == "create" for change in pending):
        state = PARTLY_BUILT
    if not owned and not pending:
        state = NOTHING_TO_BUILD if not module.resource_count(spec, observed) else NOT_BUILT
    return state, owned, pending


#: How the one line names a dependency that is not ready, by its state ("not built" says no more).
_NOT_READY = {NOT_BUILT: "missing", PARTLY_BUILT: "partly built", DRIFTED: "drifted"}


def dependency_error(spec: Spec, chosen: Sequence[StepInfo], needed: Mapping[str, Any],
                     creates: bool = True) -> DependencyError | None:
    """The error that says which step ``chosen`` needs is not ready, from the discovery ``needed`` of the steps
    they depend on (by name, step-list order); None when all of them are ready (nothing pending).

    A step that is partly built (only creates pending: what a ``down`` kept, for instance) stops the
    ``chosen`` ones only when they have something to create (``creates``): changing what exists on what
    is left is how a kept database's deletion protection is lifted before the ``down`` that deletes it."""
    waiting = [(name, state, len(pending)) for name, observed in needed.items()
               for state, _, pending in [step_state(spec, name, observed)]
               if pending and (creates or state != PARTLY_BUILT)]
    if not waiting:
        return None
    (first, state, count), rest = waiting[0], waiting[1:]
    user = next(step.name for step in chosen if first in {s.name for s in steps.needed_by([step])})
    notebook = steps.get(first).notebook
    changes = f"{count} change{'' if count == 1 else 's'} pending"
    how = {NOT_BUILT: "", PARTLY_BUILT: f", which is partly built ({changes})"}.get(state, f", which has {changes}")
    message = f"the {user} {'need' if user.endswith('s') else 'needs'} the {first}{how}: run {notebook} first"
    groups = [f"{word}: {', '.join(name for name, state, _ in rest if state == kind)}"
              for kind, word in _NOT_READY.items() if any(state == kind for _, state, _ in rest)]
    if groups:
        message += f" (also {'; '.join(groups)})"
    return DependencyError(user, [name for name, _, _ in waiting], notebook, message)


def plan_destroy(ctx: Context, only: str | Iterable[str] | None = None) -> Plan:
    """Everything the selected steps own, to be deleted in reverse step-list order, except what is kept.

    A step keeps what must stay (a database with deletion protection) and says what each kept resource
    stands on; the steps before it are asked to keep those too (its subnets, its security group), so
    ``down`` never asks AWS to delete something a kept resource still uses. With ``only``, the steps left
    standing that build on a selected one keep all they own, and so what they stand on.
    """
    chosen, _ = steps.select(only)
    standing = _standing(chosen) if only else []
    observed = discover(ctx, [step.name for step in steps.STEPS if step in chosen or step in standing])
    order = [step for step in reversed(steps.STEPS) if step in chosen or step in standing]
    changes: list[Change] = []
    kept: dict[tuple[str, str], str] = {}
    for step in order:
        module = step.load()
        if step in standing:
            why = f"the {step.name} step is not part of this down (--only {','.join(s.name for s in chosen)})"
            owned = {(step.name, c.key): why for c in module.plan_destroy(ctx.spec, observed[step.name], kept)}
            planned = [c for c in module.plan_destroy(ctx.spec, observed[step.name], {**kept, **owned})
                       if c.action == "keep"]
        else:
            planned = module.plan_destroy(ctx.spec, observed[step.name], kept)
        kept = stood_on(planned, kept)
        changes += planned
    return Plan(changes, [step.name for step in order if step in chosen or any(c.step == step.name for c in changes)],
                destroy=True, observed=observed)


def _standing(chosen: list[Any]) -> list[Any]:
    """The available steps not in ``chosen`` that build on one of them. Only those that depend on a chosen
    step directly: one that builds on a standing step only is left standing with it, kept whole."""
    names = {step.name for step in chosen}
    return [step for step in steps.STEPS
            if step not in chosen and step.available and names & set(step.depends_on)]


def apply(ctx: Context, planned: Plan, parallel: int = 1) -> Outcome:
    """Carry out a plan made by :func:`plan` or :func:`plan_destroy` on the same context.

    With ``parallel`` above 1, the steps of a stand-up run at the same time where the dependencies
    allow (see :func:`apply_concurrently`). On real AWS this refuses unless the context was confirmed.
    """
    observed = planned.observed
    warnings: list[str] = []
    skipped_before = len(ctx.skipped)
    if not planned.empty:
        ctx.require_confirmation("pointapp down" if planned.destroy else "pointapp up")
    busy = [name for name in planned.steps if planned.for_step(name)]
    ctx.parallel, before = (parallel if not planned.destroy else 1), ctx.parallel  # a step's creates side by side
    try:
        if parallel > 1 and not planned.destroy and len(busy) > 1:
            warnings += apply_concurrently(ctx, planned, parallel)
        else:
            for name in busy:
                with ctx.at_work(name):
                    warnings += apply_step(ctx, name, planned.for_step(name), observed[name])
    finally:
        ctx.parallel = before
    if not planned.destroy:
        ctx.finish_deferred()  # what a step left running and no later step needed yet (a NAT gateway's wait)
    unchanged = 0
    if not planned.destroy:
        wanted = sum(steps.get(name).load().resource_count(ctx.spec, observed[name]) for name in planned.steps)
        unchanged = max(wanted - len({(c.step, c.key) for c in planned.changes}), 0)
    skipped = ctx.skipped[skipped_before:]
    applied = [c for c in planned.changes if c not in skipped and c.action != "keep"]
    return Outcome(applied, unchanged, warnings, skipped, kept=planned.kept)


def apply_concurrently(ctx: Context, planned: Plan, parallel: int) -> list[str]:
    """Apply the steps of ``planned`` in threads, at most ``parallel`` at a time, each once the steps it
    depends on are done. Ready steps start longest-path-first (:func:`pointapp.schedule.pick`), so the
    slow chain (the NAT gateway, then the database, then the service) starts as early as it can.

    A failing step stops new steps from starting; those running finish, then the first error is raised.
    """
    import concurrent.futures
    import time

    from pointapp import typical
    from pointapp.schedule import graph_of, pick, remaining_path, run_apart, split, step_seconds

    busy = [steps.get(name) for name in planned.steps if planned.for_step(name)]
    graph = graph_of(busy)
    # The units of work: each step, and apart from it the early part of a step that has one (on a
    # stand-up, the load balancer starts right after the network instead of after the database).
    units: dict[str, tuple[str, list[Any]]] = {}
    apart: set[str] = set()  # the steps whose early part runs as a unit of its own
    for step in busy:
        early, rest = split(step.name, planned.for_step(step.name))
        if early:
            units[run_apart(graph, step.name)] = (step.name, early)
            apart.add(step.name)
        units[step.name] = (step.name, rest)
    remaining = remaining_path({unit: float(step_seconds(ctx.spec, unit, len(changes), without_early=unit in apart))
                                for unit, (_, changes) in units.items()}, graph)
    done: set[str] = set()
    warnings: list[str] = []
    failures: list[BaseException] = []

    def run(name: str) -> list[str]:
        step, changes = units[name]
        with ctx.at_work(step, label=name):
            started = time.monotonic()
            ctx.say(f"started ({len(changes)} changes)")
            result = apply_step(ctx, step, changes, planned.observed[step])
            usually = step_seconds(ctx.spec, name, len(changes), without_early=name in apart)
            ctx.say(typical.finished("done", time.monotonic() - started, usually, ctx.target.is_real_aws))
            return result

    waiting_told: set[str] = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="pointapp-step") as pool:
        running: dict[concurrent.futures.Future[list[str]], str] = {}
        try:
            while len(done) < len(units) and not (failures and not running):
                if not failures:
                    ready = [name for name in units if name not in done and name not in running.values()
                             and set(graph[name]) <= done]
                    for name in pick(ready, remaining)[: parallel - len(running)]:
                        running[pool.submit(run, name)] = name
                    for name in units:
                        pending = [n for n in graph[name] if n not in done]
                        if pending and name not in waiting_told and name not in running.values():
                            waiting_told.add(name)
                            ctx.say(f"[{name}] waits for {', '.join(pending)}")
                if not running:
                    break
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    error = future.exception()
                    if error is not None:
                        failures.append(error)
                    else:
                        warnings += future.result()
                        done.add(name)
        except KeyboardInterrupt:
            ctx.stopping = True  # running steps stop before their next change
            ctx.say(f"interrupted: {', '.join(running.values()) or 'nothing'} stops after its current change")
            for future in running:
                future.cancel()
            raise
    if failures:
        raise failures[0]
    return warnings


def up(ctx: Context, only: str | Iterable[str] | None = None, parallel: int = 1) -> Outcome:
    """Plan and apply the selected steps (``parallel`` steps at a time where the dependencies allow)."""
    return apply(ctx, plan(ctx, only), parallel)


def down(ctx: Context, only: str | Iterable[str] | None = None) -> Outcome:
    """Destroy what the selected steps own, then check what is left (and say why)."""
    return finish_destroy(ctx, apply(ctx, plan_destroy(ctx, only)), only)


def finish_destroy(ctx: Context, outcome: Outcome, only: str | Iterable[str] | None = None) -> Outcome:
    """The final check of a destroy: discover again; list what was kept on purpose, and what else pointapp
    still owns there."""
    for step in steps.STEPS:
        ctx.forget_outputs(step.name)
    final = plan_destroy(ctx, only)
    outcome.kept = final.kept
    outcome.remaining = [change for change in final.changes if change.action != "keep"]
    return outcome


def estimate(ctx: Context, planned: Plan | None = None, parallel: int = 4) -> Any:
    """The expected time on real AWS of carrying out ``planned`` (a full stand-up when nothing exists),
    sequentially, along the critical path, and as pointapp schedules it with ``parallel`` steps at a time."""
    from pointapp.schedule import estimate as schedule_estimate

    planned = planned if planned is not None else plan(ctx)
    work = {}
    for name in planned.steps:
        changes = [c for c in planned.for_step(name) if not c.args.get("skip")]
        if changes:
            work[name] = (len(changes), {c.kind for c in changes if c.action == "create"})
    return schedule_estimate(ctx.spec, work, parallel)


def step_states(ctx: Context, planned: Plan) -> dict[str, tuple[str, int, int]]:
    """Each step of ``planned`` (a whole plan, :func:`plan`): its status (:func:`step_state`), how many
    resources it owns, and how many changes its plan has (what the target cannot do not counted)."""
    states = {}
    for name in planned.steps:
        state, owned, pending = step_state(ctx.spec, name, planned.observed[name], planned.for_step(name))
        states[name] = (state, owned, len(pending))
    return states


def status(ctx: Context) -> Table:
    """The checklist: each step in step-list order with its state on the target (done, drifted, partly
    built, not built, or nothing to build), the steps it needs that are not done yet, and a link to its
    notebook (relative to the notebooks' folder)."""
    planned = plan(ctx)
    states = step_states(ctx, planned)
    rows = []
    for step in steps.STEPS:
        if step.name not in states:
            continue
        state, owned, changes = states[step.name]
        waits = [need for need in step.depends_on if states.get(need, (NOT_BUILT,))[0] not in READY]
        rows.append((step.name, state, ", ".join(waits), f"{owned} owned, {changes} to change",
                     Link(step.notebook, step.notebook), step.title))
    return Table(["step", "status", "waits for", "resources", "notebook", "what it builds"], rows,
                 title=f"{ctx.spec.owner} on {ctx.target.describe()}")


def inventory(ctx: Context, step: str = "network") -> Table:
    """What one step owns now, as a table."""
    info = steps.get(step)
    module = info.load()
    return module.inventory(module.discover(ctx))
