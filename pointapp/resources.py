"""A small declarative core for steps made of independent AWS resources.

A step lists the resources it wants (:class:`Desired`, pure data from the spec, in creation order).
Each resource kind (:class:`Kind`) knows how to find the ones pointapp owns, what differs, and how to
create, update and delete one. :class:`ResourceStep` turns that into the step protocol: discover, a pure
plan, apply, destroy. Values that name another resource are :class:`Ref` and are resolved at apply time,
so a plan made before the network exists still applies once it does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from pointapp.errors import StepError
from pointapp.plan import Change, Table
from pointapp.spec import Spec
from pointapp.tags import KEY, is_owned, ownership_tags


@dataclass
class Found:
    """An owned resource as discovered: its logical key, id, tags, and the raw description."""

    kind: str
    key: str
    id: str
    tags: dict[str, str]
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.tags.get("Name", self.id)


@dataclass(frozen=True)
class Ref:
    """The id of another resource: ``Ref("network", "subnet/egress/0")`` or one of this step's keys."""

    step: str
    key: str
    attribute: str = "id"

    def __str__(self) -> str:
        return f"<{self.key}>"


@dataclass(frozen=True)
class Desired:
    """One resource a step wants. ``props`` are what the kind creates and compares."""

    kind: str
    key: str
    name: str
    props: Mapping[str, Any]
    detail: str = ""


class Unresolved(Exception):
    """A :class:`Ref` to something that does not exist (yet)."""

    def __init__(self, ref: Ref) -> None:
        self.ref = ref
        super().__init__(f"{ref.step} {ref.key}")


Resolver = Callable[[Ref], Any]

#: The calls a create makes, as data, in the order it makes them: each boto3 operation's name with its
#: keyword arguments, or with a list of them when the operation is called once per item (a role's policies).
Request = dict[str, Any]


def resolve(value: Any, resolver: Resolver) -> Any:
    """``value`` with every :class:`Ref` inside replaced by what ``resolver`` gives."""
    if isinstance(value, Ref):
        return resolver(value)
    if isinstance(value, Mapping):
        return {k: resolve(v, resolver) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(v, resolver) for v in value]
    return value


def has_refs(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if isinstance(value, Mapping):
        return any(has_refs(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_refs(v) for v in value)
    return False


class Kind:
    """How to handle one kind of resource. Subclasses set ``name`` and ``service`` and override."""

    name = ""
    service = ""
    tagged = True  # False for kinds that carry no tags of their own (an S3 object)

    def find(self, ctx: Any, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        """Every resource of this kind that ``step`` owns in this environment (strays included).

        ``known`` holds what the step's earlier kinds found (a listener is looked up on its load balancer).
        """
        raise NotImplementedError

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        """The props (resolved) that differ from what exists and can be changed in place."""
        return {}

    def replace(self, desired: Desired, props: Mapping[str, Any], found: Found) -> str | None:
        """Why the resource must be replaced (a setting that cannot change in place), or None."""
        return None

    def request(self, spec: Spec, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Request:
        """The create request, built without a target: ``create`` sends it, and the CloudFormation export maps it
        to the template's properties (``props`` then hold the template's intrinsics), so the two cannot drift.

        What a create learns only when it runs (the region, an AMI an SSM parameter names, a token) it adds to
        ``props`` first; the export adds its own expressions of the same values.
        """
        raise NotImplementedError

    def create(self, ctx: Any, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        raise NotImplementedError

    def update(self, ctx: Any, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def delete(self, ctx: Any, found: Found) -> str | None:
        """Delete; return a note when the target cannot (the emulator lacks the operation)."""
        raise NotImplementedError

    def describe(self, found: Found) -> str:
        return ""

    def outputs(self, found: Found) -> dict[str, Any]:
        """Values other steps need besides the id (an endpoint, a secret's ARN), by name."""
        return {}

    def owned(self, spec: Spec, step: str, items: Iterable[Mapping[str, Any]], id_of: Callable[[Any], str],
              tags_of: Callable[[Any], Mapping[str, str]]) -> list[Found]:
        """The described ``items`` that ``step`` owns in this environment, as :class:`Found`."""
        found = []
        for item in items:
            tags = dict(tags_of(item))
            if is_owned(tags, spec, step):
                found.append(Found(self.name, tags[KEY], id_of(item), tags, dict(item)))
        return found

    def unavailable(self, ctx: Any) -> str | None:
        """Why this kind cannot be used on the target at all (the emulator lacks the service), or None."""
        return None


@dataclass
class StepState:
    """What a resource step found: owned resources by key, strays, and the ids other steps expose."""

    found: dict[str, Found] = field(default_factory=dict)
    strays: list[Found] = field(default_factory=list)
    refs: dict[tuple[str, str], Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # kind -> why the target cannot do it

    def ids(self) -> dict[str, str]:
        return {key: found.id for key, found in self.found.items()}


class ResourceStep:
    """The step protocol over a list of :class:`Desired` resources and their :class:`Kind` handlers."""

    def __init__(self, name: str, kinds: Sequence[Kind], desired: Callable[[Spec], list[Desired]],
                 uses: Sequence[str] = (), runtime: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.name = name
        self.kinds = {kind.name: kind for kind in kinds}
        self.desired = desired
        self.uses = tuple(uses)
        self.runtime = runtime  # values known only on a target (account, region): Ref("runtime", key)

    def _collect_refs(self, ctx: Any, state: StepState) -> None:
        for step in self.uses:
            for key, value in ctx.outputs(step).items():
                state.refs[(step, key)] = value
        for key, value in (self.runtime(ctx) if self.runtime else {}).items():
            state.refs[("runtime", key)] = value

    # discover

    def discover(self, ctx: Any) -> StepState:
        state = StepState()
        wanted = {d.key for d in self.desired(ctx.spec)}
        for kind in self.kinds.values():
            reason = kind.unavailable(ctx)
            if reason:
                state.unavailable[kind.name] = reason
                continue
            for found in kind.find(ctx, ctx.spec, self.name, state.found):
                if found.key in wanted and found.key not in state.found:
                    state.found[found.key] = found
                else:
                    state.strays.append(found)
        self._collect_refs(ctx, state)
        return state

    def _resolver(self, state: StepState, strict: bool) -> Resolver:
        def lookup(ref: Ref) -> Any:
            if ref.step == self.name:
                found = state.found.get(ref.key)
                if found is not None:
                    return found.raw.get(ref.attribute, found.id) if ref.attribute != "id" else found.id
            elif (ref.step, ref.key) in state.refs:
                return state.refs[(ref.step, ref.key)]
            if strict:
                raise Unresolved(ref)
            return str(ref)

        return lookup

    # plan (pure)

    def plan(self, spec: Spec, state: StepState) -> list[Change]:
        changes: list[Change] = []
        resolver = self._resolver(state, strict=False)
        for desired in self.desired(spec):
            kind = self.kinds[desired.kind]
            found = state.found.get(desired.key)
            tags = ownership_tags(spec, self.name, desired.key, desired.name)
            props = resolve(desired.props, resolver)
            if found is not None:
                reason = kind.replace(desired, props, found)
                if reason:
                    changes.append(self._delete_change(found, f"replaced: {reason}"))
                    found = None
            if found is not None and found.raw.get("borrowed"):
                continue  # exists, made elsewhere: used as it is, never changed
            if found is None:
                skip = state.unavailable.get(kind.name)
                detail = f"{desired.detail} (skipped: {skip})" if skip else desired.detail
                changes.append(Change(self.name, "create", kind.name, desired.key, desired.name, detail,
                                      "create", {"desired": desired, "tags": tags, "skip": skip}))
                continue
            differences = kind.differences(desired, props, found)
            missing_tags = {k: v for k, v in tags.items() if found.tags.get(k) != v} if kind.tagged else {}
            if missing_tags:
                differences = {**differences, "tags": missing_tags}
            if differences:
                detail = ", ".join(f"{k} -> {_short(v)}" for k, v in differences.items())
                changes.append(Change(self.name, "update", kind.name, desired.key, desired.name, detail, "update",
                                      {"desired": desired, "differences": differences, "tags": tags}))
        order = list(self.kinds)
        for stray in sorted(state.strays, key=lambda f: -order.index(f.kind)):
            changes.append(self._delete_change(stray, "not in the spec"))
        return changes

    def _delete_change(self, found: Found, reason: str) -> Change:
        return Change(self.name, "delete", found.kind, found.key, found.name, f"{found.id} ({reason})", "delete",
                      {"found": found})

    def plan_destroy(self, spec: Spec, state: StepState) -> list[Change]:
        order = list(self.kinds)
        everything = list(state.found.values()) + state.strays
        return [Change(self.name, "delete", f.kind, f.key, f.name, f.id, "delete", {"found": f})
                for f in sorted(everything, key=lambda f: (-order.index(f.kind), f.key))]

    # apply

    def apply(self, ctx: Any, changes: Sequence[Change], state: StepState) -> list[str]:
        try:
            warnings = self._apply(ctx, changes, state)
        except BaseException:
            ctx.forget_outputs(self.name)  # partly applied: the steps that use it discover it afresh
            raise
        # What it holds now, from what was found and made: the steps that use it need not discover it again.
        ctx.remember_outputs(self.name, self.outputs(state))
        return warnings

    def _apply(self, ctx: Any, changes: Sequence[Change], state: StepState) -> list[str]:
        warnings: list[str] = []
        self._collect_refs(ctx, state)  # a plan made before a step it uses was applied
        resolver = self._resolver(state, strict=True)
        for change in changes:
            ctx.check_stopping()
            ctx.say(f"  {change.line()}")
            kind = self.kinds[change.kind]
            if change.args.get("skip"):
                ctx.skipped.append(change)
                continue
            try:
                if change.op == "create":
                    desired: Desired = change.args["desired"]
                    state.found[desired.key] = kind.create(ctx, desired, resolve(desired.props, resolver),
                                                           change.args["tags"])
                elif change.op == "update":
                    desired = change.args["desired"]
                    kind.update(ctx, desired, resolve(desired.props, resolver), state.found[desired.key],
                                change.args["differences"])
                else:
                    note = kind.delete(ctx, change.args["found"])
                    if note:
                        warnings.append(f"{change.kind} {change.name}: {note}")
                        ctx.skipped.append(change)
                        ctx.say(f"    skipped: {note}")
                    if state.found.get(change.key) is change.args["found"]:
                        del state.found[change.key]
                if change not in ctx.skipped:
                    ctx.done.append(change)
            except Unresolved as missing:
                if missing.ref.step == "runtime":
                    need = f"needs {missing.ref.key}, known once the steps {self.name} depends on are up"
                else:
                    need = (f"needs {missing.ref.key} of step {missing.ref.step}, which does not exist: "
                            f"run `pointapp up --only {missing.ref.step}` first")
                raise StepError(self.name, f"{change.kind} {change.name}", need) from None
            except botocore.exceptions.ClientError as error:
                info = error.response.get("Error", {})
                raise StepError(self.name, f"{change.kind} {change.name}", info.get("Message", str(error)),
                                info.get("Code")) from error
        return warnings

    def resource_count(self, spec: Spec, state: StepState) -> int:
        return len(self.desired(spec))

    def outputs(self, state: StepState) -> dict[str, Any]:
        values: dict[str, Any] = dict(state.ids())
        for found in state.found.values():
            values.update({f"{found.key}/{name}": value for name, value in self.kinds[found.kind].outputs(found).items()})
        return values

    def inventory(self, state: StepState) -> Table:
        rows = [(f.kind, f.name, f.id, self.kinds[f.kind].describe(f))
                for f in list(state.found.values()) + state.strays]
        return Table(["resource", "name", "id", "detail"], rows, title=f"{self.name}: {len(rows)} resources")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def client_error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def ignore_codes(call: Callable[..., Any], codes: Iterable[str], **kwargs: Any) -> Any:
    """Call; an error whose code is in ``codes`` (say, not found on delete) counts as success."""
    try:
        return call(**kwargs)
    except botocore.exceptions.ClientError as error:
        if client_error_code(error) in set(codes):
            return None
        raise


def wait_for(ctx: Any, client: Any, waiter: str, what: str, typical: str = "", real_delay: int = 15,
             max_attempts: int = 120, **kwargs: Any) -> dict[str, Any]:
    """A boto3 waiter that says what it waits for, how long that usually takes, and how long it took.

    Returns the waiter's last answer (the description that showed the state waited for), so the caller
    need not describe the resource once more.
    """
    import threading
    import time

    usually = f" (usually {typical} on AWS)" if typical else ""
    ctx.say(f"    waiting for {what}{usually} ...")
    started = time.monotonic()
    polling = client.get_waiter(waiter)
    event = f"after-call.{client.meta.service_model.service_id.hyphenize()}.{polling.config.operation}"
    me, last = threading.get_ident(), {}

    def keep(parsed: dict[str, Any], **_: Any) -> None:
        if threading.get_ident() == me:  # this wait's polls, not another step's calls on the same client
            last["answer"] = parsed

    client.meta.events.register(event, keep)
    try:
        polling.wait(WaiterConfig={"Delay": ctx.wait_delay(real_delay), "MaxAttempts": max_attempts}, **kwargs)
    except botocore.exceptions.WaiterError as error:
        reason = error.last_response.get("Error", error)
        raise StepError("wait", what, f"gave up after {time.monotonic() - started:.0f}s: {reason}") from None
    finally:
        client.meta.events.unregister(event, keep)
    ctx.say(f"    {what}: done after {time.monotonic() - started:.0f}s")
    return last.get("answer", {})
