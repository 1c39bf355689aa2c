"""A small declarative core for steps made of independent AWS resources.

A step lists the resources it wants (:class:`Desired`, pure data from the spec, in creation order).
Each resource kind (:class:`Kind`) knows how to find the ones pointapp owns, what differs, and how to
create, update and delete one. :class:`ResourceStep` turns that into the step protocol: discover, a pure
plan, apply, destroy. Values that name another resource are :class:`Ref` and are resolved at apply time,
so a plan made before the network exists still applies once it does.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

import botocore.exceptions

from pointapp.concurrency import CHANGES_AT_ONCE, READS_AT_ONCE, run_graph
from pointapp.context import StepContext
from pointapp.diffs import Differences
from pointapp.diffs import describe as describe_differences
from pointapp.errors import StepError
from pointapp.plan import Change, Kept, Table, keep
from pointapp.spec import Spec
from pointapp.tags import KEY, foreign_owner, is_owned, missing_tags, ownership_tags
from pointapp.typical import Typical, finished


@dataclass
class Found:
    """An owned resource as discovered: its logical key, id, tags, and the raw description.

    ``owner`` is set on a resource that carries another environment's ownership tags (the one it names):
    it is never changed, adopted or deleted, and a create of the same name stops and names that owner.
    ``stray`` marks an owned resource that is not the one in use (outside the environment's VPC): it is
    deleted. ``leaving`` marks one an earlier run deleted that is not gone yet (:attr:`Kind.lingers`).
    ``parent`` is the key of the resource whose description holds this one (see :attr:`Desired.parent`).
    """

    kind: str
    key: str
    id: str
    tags: dict[str, str]
    raw: dict[str, Any]
    owner: str = ""
    stray: bool = False
    leaving: bool = False
    parent: str = ""

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
class Template:
    """Text made of other resources' values: ``Template("{}._domainkey.example.com", Ref(...))``, each ``{}``
    filled with its part, resolved."""

    text: str
    parts: tuple[Any, ...]

    def __init__(self, text: str, *parts: Any) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "parts", parts)

    def __str__(self) -> str:
        return self.text.format(*map(str, self.parts))


@dataclass(frozen=True)
class Desired:
    """One resource a step wants. ``props`` are what the kind creates and compares.

    ``owner`` names the environment that owns and makes a resource several environments share (one per
    account, such as the SES identity of a domain): this one only uses it as it is, never makes, changes
    or deletes it.

    ``parent`` makes it a part of another resource of the step, by key (a route of its route table, a rule of
    its security group): untagged, found in the parent's description, it counts as the parent (its changes
    carry the parent's key; no output, no inventory row of its own) and goes with it on ``down``.
    """

    kind: str
    key: str
    name: str
    props: Mapping[str, Any]
    detail: str = ""
    owner: str = ""
    parent: str = ""


@dataclass(frozen=True)
class Arn:
    """An ARN in the target's partition, ``arn:<partition>:<service>:<region>:<account>:<resource>``.

    Policies name resources by ARN, and the partition (``aws``, ``aws-cn``, ``aws-us-gov``) is the
    target's: it is filled in when the step resolves its props, as are the region and the account when
    they are None (the target's own). ``"*"`` keeps a wildcard, ``""`` an empty field (IAM is global).
    """

    service: str
    resource: str
    region: str | None = "*"
    account: str | None = "*"

    def text(self, partition: str, region: str, account: str) -> str:
        """The ARN in ``partition``; ``region`` and ``account`` stand where this ARN names the target's own."""
        return f"arn:{partition}:{self.service}:{region}:{account}:{self.resource}"

    def on(self, ctx: StepContext) -> str:
        """The ARN on the target of ``ctx``: its partition, and its region and account where this ARN names
        the target's own (the account is asked only then)."""
        return self.text(ctx.partition, ctx.target.region if self.region is None else self.region,
                         ctx.account if self.account is None else self.account)

    @property
    def needs_account(self) -> bool:
        return self.account is None

    def __str__(self) -> str:
        return self.text("<partition>", "<region>" if self.region is None else self.region,
                         "<account>" if self.account is None else self.account)



#: The target's account id, for props that name it bare (a policy's aws:PrincipalAccount condition).
ACCOUNT = Ref("runtime", "account")

#: Any ARN, in any partition (``aws``, ``aws-cn``, ``aws-us-gov``, ...): its service is the third field.
ARN_PATTERN = re.compile(r"^arn:aws(?:-[a-z]+)*:(?P<service>[a-z0-9-]+):")


def arn_service(value: str) -> str | None:
    """The service of the ARN ``value`` (``secretsmanager``, ``ssm``), or None when it is not an ARN."""
    match = ARN_PATTERN.match(value)
    return match.group("service") if match else None


class LeftStanding(Exception):  # noqa: N818 (not an error: the delete is declined, with a warning)
    """A delete a kind declines to finish: the resource stays, and ``down`` warns with this message (a VPC
    that still holds resources pointapp does not own)."""


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
    if isinstance(value, Template):
        return value.text.format(*(resolve(part, resolver) for part in value.parts))
    if isinstance(value, Arn):
        return value.text(str(resolver(Ref("runtime", "partition"))),
                          value.region if value.region is not None else str(resolver(Ref("runtime", "region"))),
                          value.account if value.account is not None else str(resolver(Ref("runtime", "account"))))
    if isinstance(value, Mapping):
        return {k: resolve(v, resolver) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(v, resolver) for v in value]
    return value


def _names_account(value: Any) -> bool:
    if isinstance(value, Arn):
        return value.needs_account
    if isinstance(value, Ref):
        return (value.step, value.key) == ("runtime", "account")
    if isinstance(value, Mapping):
        return any(_names_account(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_names_account(v) for v in value)
    return False


def _refs(value: Any) -> list[Ref]:
    """Every :class:`Ref` inside ``value``."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Template):
        return _refs(list(value.parts))
    if isinstance(value, Mapping):
        return [ref for v in value.values() for ref in _refs(v)]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in _refs(v)]
    return []


def has_refs(value: Any) -> bool:
    if isinstance(value, (Ref, Arn, Template)):
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
    #: The call an action makes that a target may lack, as (service, operation): the plan marks such a
    #: change skipped on a target without it (:meth:`needs`), so it neither runs nor counts as a change.
    operations: ClassVar[Mapping[str, tuple[str, str]]] = {}
    #: How long a create usually takes on AWS until the resource is usable (what its create waits for),
    #: or None when it waits for nothing.
    typical: ClassVar[Typical | None] = None
    #: How long a delete usually takes on AWS until the resource is gone (what its delete waits for).
    typical_delete: ClassVar[Typical | None] = None

    def waits(self, spec: Spec) -> tuple[Typical, ...]:
        """What a create of this kind waits for on AWS, in order: :attr:`typical`, unless the spec makes
        it another figure (a Multi-AZ database) or the create waits for more."""
        return (self.typical,) if self.typical else ()

    #: The kinds of the step whose found resources :meth:`find` reads from ``known`` (a listener is looked up
    #: on its load balancer): it runs after them; the other kinds of a step are read side by side.
    finds_after: ClassVar[tuple[str, ...]] = ()
    #: The kinds of the step whose creates a create of this kind waits for under ``up --parallel N``, besides
    #: the resources its props :class:`Ref`. None: every earlier kind of the step (props name some resources by
    #: name, not by Ref: an instance its instance profile, a role its OIDC provider). Creates of one kind that
    #: do not Ref each other run side by side.
    creates_after: ClassVar[tuple[str, ...] | None] = None

    #: The props whose resources take one of this kind with them when AWS deletes them (a subnet its route
    #: table association): when the plan replaces one of those, this one is made anew, not changed.
    goes_with: ClassVar[tuple[str, ...]] = ()
    #: The op of an update that empties a resource of this kind before the step deletes any resource
    #: (:meth:`to_clear`, :meth:`clear`), or "". EC2 refuses to delete a security group another group's rule
    #: names (DependencyViolation, DeleteSecurityGroup in the EC2 API reference): their rules go first.
    clears: ClassVar[str] = ""
    #: The name under which the changes that need a resource of this kind settled wait (``ctx.defer``), or
    #: "": a change whose props Ref a resource that is :meth:`unsettled` (a NAT gateway still pending) waits
    #: for :meth:`settle`, left to when a later step needs it or to the end of ``up``, so that the steps
    #: that do not need it start meanwhile.
    deferred: ClassVar[str] = ""
    #: A delete of this kind finishes later (a NAT gateway holds its Elastic IP, its subnet's interface and
    #: a public address until it is gone): before the step deletes a resource of an earlier kind (what it may
    #: stand on), and at the end of the apply, :meth:`await_gone` waits for those deleted so far, and for
    #: those an earlier run left going (:attr:`Found.leaving`).
    lingers: ClassVar[bool] = False

    def as_made(self, desired: Desired) -> Found | None:
        """What AWS makes of this part along with its parent (:attr:`Desired.parent`), for a plan made before
        the parent exists: the VPC's default security group, a new group's all-outbound rule. None: nothing
        (it is created). Pure."""
        return None

    def to_clear(self, found: Found) -> str | None:
        """What :meth:`clear` removes from ``found`` before the step's deletes (the plan's detail), or None. Pure."""
        return None

    def clear(self, ctx: StepContext, found: Found) -> None:
        """Empty ``found`` of what :attr:`clears` names."""
        raise NotImplementedError

    def unsettled(self, found: Found) -> bool:
        """Made (now or by a run that stopped) but not usable yet: what needs it waits for :meth:`settle`. Pure."""
        return False

    def settle(self, ctx: StepContext, found: Sequence[Found]) -> None:
        """Wait (saying for what, and how long it usually takes) until ``found`` are usable."""

    def settling(self, found: Sequence[Found]) -> str:
        """The line said when the wait for ``found`` is left for later (:attr:`deferred`)."""
        return f"{self.name} {', '.join(f.name for f in found)} is starting; what needs it follows once it is ready"

    def await_gone(self, ctx: StepContext, found: Sequence[Found]) -> None:
        """Wait (saying for what) until the deleted ``found`` are gone (:attr:`lingers`)."""

    def find(self, ctx: StepContext, spec: Spec, step: str, known: Mapping[str, Found]) -> list[Found]:
        """Every resource of this kind that ``step`` owns in this environment (strays included).

        ``known`` holds what the kinds of :attr:`finds_after` found (and maybe other earlier kinds).
        """
        raise NotImplementedError

    def differences(self, desired: Desired, props: Mapping[str, Any], found: Found) -> dict[str, Any]:
        """The props (resolved) that differ from what exists and can be changed in place."""
        return {}

    def explain(self, desired: Desired, found: Found, differences: Mapping[str, Any]) -> str:
        """The plan's detail of an update that makes ``differences`` (tags aside): each field that differs, with
        its value now where the kind read it (:func:`pointapp.diffs.changed`), unless the kind says it in its own
        words. Pure."""
        return describe_differences(differences)

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

    def create(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], tags: Mapping[str, str]) -> Found:
        raise NotImplementedError

    def update(self, ctx: StepContext, desired: Desired, props: Mapping[str, Any], found: Found,
               changes: Mapping[str, Any]) -> None:
        """Change the ``changes`` (resolved props that differ, never ``tags``: :meth:`tag` sets those)."""
        raise NotImplementedError

    def tag(self, ctx: StepContext, found: Found, tags: Mapping[str, str]) -> None:
        """Set ``tags`` (the wanted tags that are absent or differ) on the existing resource ``found``,
        leaving the tags others added: each kind makes its service's tagging call
        (:func:`pointapp.tags.add_tags`). The core calls it for a plan's ``tags`` difference."""
        raise NotImplementedError(f"{self.name} sets no tags")

    def delete(self, ctx: StepContext, found: Found) -> str | None:
        """Delete; return a note when the target cannot (the emulator lacks the operation)."""
        raise NotImplementedError

    def keeps(self, spec: Spec, found: Found) -> str | None:
        """Why ``down`` must leave this resource (deletion protection is on), or None. Pure: from what was found."""
        return None

    def stands_on(self, found: Found) -> list[str]:
        """The ids (or names) of what this resource uses, as AWS describes it (a database's subnet group,
        subnets and security groups). A kept resource keeps those too. Pure."""
        return []

    def describe(self, found: Found) -> str:
        return ""

    def describe_among(self, found: Found, step_found: Iterable[Found]) -> str:
        """The inventory's detail of ``found``, which may read what else the step found (``step_found``): a
        cluster counts the services found in it. Pure."""
        return self.describe(found)

    def outputs(self, found: Found) -> dict[str, Any]:
        """Values other steps need besides the id (an endpoint, a secret's ARN), by name."""
        return {}

    def needs(self, action: str, changes: Mapping[str, Any]) -> tuple[str, str] | None:
        """The call of :attr:`operations` that ``action`` with ``changes`` makes (a tags-only update makes
        its own tagging call only)."""
        if action == "update" and not set(changes) - {"tags"}:
            return None
        return self.operations.get(action)

    def owned(self, spec: Spec, step: str, items: Iterable[Mapping[str, Any]], id_of: Callable[[Any], str],
              tags_of: Callable[[Any], Mapping[str, str]]) -> list[Found]:
        """The described ``items`` that ``step`` owns in this environment, as :class:`Found`; and those
        another pointapp environment owns, with :attr:`Found.owner` set (discovery keeps them apart)."""
        found = []
        for item in items:
            tags = dict(tags_of(item))
            if is_owned(tags, spec, step):
                found.append(Found(self.name, tags[KEY], id_of(item), tags, dict(item)))
            elif foreign_owner(tags, spec):
                found.append(Found(self.name, tags.get(KEY, ""), id_of(item), tags, dict(item),
                                   owner=foreign_owner(tags, spec)))
        return found

    def unavailable(self, ctx: StepContext) -> str | None:
        """Why this kind cannot be used on the target at all (the emulator lacks the service), or None."""
        return None


@dataclass
class StepState:
    """What a resource step found: owned resources by key, strays, and the ids other steps expose."""

    found: dict[str, Found] = field(default_factory=dict)
    strays: list[Found] = field(default_factory=list)
    refs: dict[tuple[str, str], Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # kind -> why the target cannot do it
    gaps: dict[tuple[str, str], str] = field(default_factory=dict)  # (service, operation) the target lacks -> why
    foreign: dict[tuple[str, str], Found] = field(default_factory=dict)  # (kind, name): another environment's
    facts: dict[str, Any] = field(default_factory=dict)  # what the desired list depends on (ResourceStep.facts)
    leaving: list[Found] = field(default_factory=list)  # deleted by an earlier run, not gone yet

    def ids(self) -> dict[str, str]:
        """The ids of the resources found, by key (the parts of resources, :attr:`Found.parent`, aside)."""
        return {key: found.id for key, found in self.found.items() if not found.parent}


@dataclass(frozen=True)
class EarlyPart:
    """Resources of a step that need fewer steps than the rest: on a stand-up (creates only) they start as
    soon as ``needs`` are done, as a unit of their own named ``name``; the rest of the step follows."""

    name: str
    kinds: frozenset[str]
    needs: tuple[str, ...]


class ResourceStep:
    """The step protocol over a list of :class:`Desired` resources and their :class:`Kind` handlers.

    ``facts``, when given, reads on a target what the desired list depends on (the zones a network is built
    in): discovery reads them first and keeps them in :attr:`StepState.facts`, and ``desired`` is then called
    as ``desired(spec, facts)``, so the plan stays a pure function of the spec and what was found.
    """

    def __init__(self, name: str, kinds: Sequence[Kind], desired: Callable[..., list[Desired]],
                 uses: Sequence[str] = (), runtime: Callable[[StepContext], dict[str, Any]] | None = None,
                 early: EarlyPart | None = None,
                 facts: Callable[[StepContext], Mapping[str, Any]] | None = None) -> None:
        self.name = name
        self.kinds = {kind.name: kind for kind in kinds}
        self.desired = desired
        self.uses = tuple(uses)
        self.runtime = runtime  # values known only on a target (account, region): Ref("runtime", key)
        self.early = early  # what of it may start before the rest, on a stand-up
        self.facts = facts

    def wanted(self, spec: Spec, state: StepState) -> list[Desired]:
        """The desired resources, in creation order, given the facts discovery read (when the step reads any)."""
        return self.desired(spec, state.facts) if self.facts else self.desired(spec)

    def _collect_refs(self, ctx: StepContext, state: StepState) -> None:
        for step in self.uses:
            for key, value in ctx.outputs(step).items():
                state.refs[(step, key)] = value
        for key, value in (self.runtime(ctx) if self.runtime else {}).items():
            state.refs[("runtime", key)] = value
        # What an Arn in the props takes from the target: the account only when one names it (one STS call).
        state.refs[("runtime", "partition")] = ctx.partition
        state.refs[("runtime", "region")] = ctx.target.region
        if any(_names_account(d.props) for d in self.wanted(ctx.spec, state)):
            state.refs[("runtime", "account")] = ctx.account

    # discover

    def discover(self, ctx: StepContext) -> StepState:
        """What the step owns: its facts first, then its kinds read side by side, each after the kinds it
        :attr:`Kind.finds_after`; what they found is taken in the kinds' order, so the state is the same as
        read one after another."""
        state = StepState()
        if self.facts:
            state.facts = dict(self.facts(ctx))
        desired = self.wanted(ctx.spec, state)
        wanted = {d.key for d in desired}
        shared = {(d.kind, d.name): d for d in desired if d.owner}
        kinds = list(self.kinds.values())
        taken: list[str] = []  # the kinds whose finds are in ``state``, a prefix of ``kinds``
        results: dict[str, tuple[str | None, list[Found]]] = {}
        taking = threading.Lock()

        def find(kind: Kind) -> tuple[str | None, list[Found]]:
            reason = kind.unavailable(ctx)
            if reason:
                return reason, []
            with taking:
                known = dict(state.found)
            return None, kind.find(ctx, ctx.spec, self.name, known)

        def take(name: str, result: tuple[str | None, list[Found]]) -> None:  # in the calling thread
            results[name] = result
            while len(taken) < len(kinds) and kinds[len(taken)].name in results:
                kind = kinds[len(taken)]
                with taking:
                    self._take(ctx, kind, *results[kind.name], state, wanted, shared)
                taken.append(kind.name)

        # A kind that reads ``known`` waits for every kind up to the last it reads: those are taken by then.
        index = {kind.name: i for i, kind in enumerate(kinds)}
        after = {kind.name: [k.name for k in kinds[:max((index[n] + 1 for n in kind.finds_after), default=0)]]
                 for kind in kinds}
        run_graph([(kind.name, ctx.as_this_work(functools.partial(find, kind))) for kind in kinds], after,
                  READS_AT_ONCE, take)
        self._collect_refs(ctx, state)
        return state

    def _take(self, ctx: StepContext, kind: Kind, unavailable: str | None, finds: list[Found], state: StepState,
              wanted: set[str], shared: Mapping[tuple[str, str], Desired]) -> None:
        if unavailable:
            state.unavailable[kind.name] = unavailable
            return
        for operation in kind.operations.values():
            gap = ctx.lacks(*operation)
            if gap:
                state.gaps[operation] = gap
        for found in finds:
            used = shared.get((kind.name, found.name)) or shared.get((kind.name, found.id))
            if found.leaving:
                state.leaving.append(found)
            elif found.owner and used is not None and used.owner == found.owner:  # theirs, used as it is
                state.found[used.key] = replace(found, key=used.key, raw={**found.raw, "borrowed": True})
            elif found.owner:
                state.foreign[(kind.name, found.name)] = state.foreign[(kind.name, found.id)] = found
            elif found.key in wanted and found.key not in state.found and not found.stray:
                state.found[found.key] = found
            else:
                state.strays.append(found)

    def _resolver(self, state: StepState, strict: bool, unknown: Collection[str] = ()) -> Resolver:
        """Refs to values; ``unknown`` keys (of resources the plan replaces) stand as placeholders."""

        def lookup(ref: Ref) -> Any:
            if ref.step == self.name and ref.key not in unknown:
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
        replaced: set[str] = set()  # keys of this step the plan deletes and makes anew: their ids are unknown
        resolver = self._resolver(state, strict=False, unknown=replaced)
        for desired in self.wanted(spec, state):
            kind = self.kinds[desired.kind]
            found = state.found.get(desired.key)
            tags = ownership_tags(spec, self.name, desired.key, desired.name)
            props = resolve(desired.props, resolver)
            if found is not None and any(ref.step == self.name and ref.key in replaced
                                         for prop in kind.goes_with for ref in _refs(desired.props.get(prop))):
                found = None  # AWS removed it with the resource it stood on, which is made anew
            if found is not None:
                reason = kind.replace(desired, props, found)
                if reason:
                    changes.append(self._delete_change(found, f"replaced: {reason}", state))
                    replaced.add(desired.key)
                    found = None
            if found is None and desired.parent and (desired.parent not in state.found or desired.parent in replaced):
                found = kind.as_made(desired)  # made by AWS with its parent, which is still to be made
            if found is not None and found.raw.get("borrowed"):
                continue  # exists, made elsewhere: used as it is, never changed
            if found is None:
                skip = state.unavailable.get(kind.name) or (
                    f"environment {desired.owner} owns it and makes it with its own up; this one uses it once it exists"
                    if desired.owner else None)
                taken = state.foreign.get((kind.name, desired.name))
                detail = desired.detail
                if skip:
                    detail = f"{desired.detail} (skipped: {skip})"
                elif taken:
                    detail = f"{desired.detail} (stops: {desired.name} belongs to environment {taken.owner})"
                changes.append(Change(self.name, "create", kind.name, desired.parent or desired.key, desired.name,
                                      detail, "create", {"desired": desired, "tags": tags, "skip": skip,
                                                         "taken": taken.owner if taken and not skip else ""}))
                continue
            differences = kind.differences(desired, props, found)
            absent = missing_tags(found.tags, tags) if kind.tagged else {}
            if absent:
                was = {**getattr(differences, "was", {}), "tags": {key: found.tags.get(key) for key in absent}}
                differences = Differences({**differences, "tags": absent}, was)
            if differences:
                changes += self._update_changes(kind, desired, differences, tags, state, found)
        order = list(self.kinds)
        strays = sorted(state.strays, key=lambda f: -order.index(f.kind))
        changes += self._clear_changes(strays)
        for stray in strays:
            changes.append(self._delete_change(stray, "not in the spec", state))
        return changes

    def _update_changes(self, kind: Kind, desired: Desired, differences: Mapping[str, Any], tags: Mapping[str, str],
                        state: StepState, found: Found) -> list[Change]:
        """The update, marked skipped when it needs a call the target lacks; its tags, which a call of
        their own sets, are then a change apart that the target can make."""
        gap = state.gaps.get(kind.needs("update", differences) or ("", ""))
        was: Mapping[str, Any] = getattr(differences, "was", {})
        parts = [dict(differences)]
        if gap and "tags" in differences:
            parts = [{"tags": differences["tags"]}, {k: v for k, v in differences.items() if k != "tags"}]
        changes = []
        for part in parts:
            skip = gap if kind.needs("update", part) else None
            settings = Differences({k: v for k, v in part.items() if k != "tags"}, was)
            said = [kind.explain(desired, found, settings)] if settings else []
            if "tags" in part:  # the core adds them last
                said.append(describe_differences({"tags": part["tags"]}, {"tags": was.get("tags", {})}))
            detail = ", ".join(said) + (f" (skipped: {skip})" if skip else "")
            changes.append(Change(self.name, "update", kind.name, desired.parent or desired.key, desired.name, detail,
                                  "update", {"desired": desired, "differences": part, "tags": tags, "skip": skip,
                                             "found": found}))
        return changes

    def _delete_change(self, found: Found, reason: str, state: StepState) -> Change:
        skip = state.gaps.get(self.kinds[found.kind].needs("delete", {}) or ("", ""))
        detail = f"{found.id} ({reason})" if reason else found.id
        return Change(self.name, "delete", found.kind, found.parent or found.key, found.name,
                      f"{detail} (skipped: {skip})" if skip else detail, "delete", {"found": found, "skip": skip})

    def _clear_changes(self, deleted: Iterable[Found]) -> list[Change]:
        """The updates that empty resources to delete first (:attr:`Kind.clears`), before any delete."""
        changes = []
        for found in deleted:
            kind = self.kinds[found.kind]
            what = kind.to_clear(found) if kind.clears else None
            if what:
                changes.append(Change(self.name, "update", found.kind, found.key, found.name, what, kind.clears,
                                      {"found": found}))
        return changes

    def plan_destroy(self, spec: Spec, state: StepState, kept: Kept | None = None) -> list[Change]:
        """Everything the step owns, dependents first, to delete; but what is kept is kept, and so is what it
        stands on: ``kept`` (from the steps after this one) names resources of this step by key, a kind
        keeps one itself (deletion protection), and each keep says which (step, key) resources it stands on,
        so that this step and the ones before it keep those too. Parts of a resource (:attr:`Desired.parent`)
        go with it. Pure."""
        order = list(self.kinds)
        keeping = {key: why for (step, key), why in (kept or {}).items() if step == self.name}
        # What an id or a name the kinds report stands for: this step's resources and those it uses.
        named: dict[str, tuple[str, str]] = {value: ref for ref, value in state.refs.items() if isinstance(value, str)}
        named.update({found.id: (self.name, key) for key, found in state.found.items() if not found.parent})
        # What the spec says each resource uses (its Refs), besides what AWS describes it using.
        refs = {d.key: [(r.step, r.key) for r in _refs(d.props) if r.step != "runtime"] for d in self.wanted(spec, state)}
        everything = [f for f in state.found.values() if not f.raw.get("borrowed") and not f.parent] + state.strays
        everything.sort(key=lambda f: (-order.index(f.kind), f.key))

        def why(f: Found) -> str | None:
            return self.kinds[f.kind].keeps(spec, f) or (keeping.get(f.key) if state.found.get(f.key) is f else None)

        def under(f: Found) -> list[tuple[str, str]]:
            spec_refs = refs.get(f.key, []) if state.found.get(f.key) is f else []
            return [ref for ref in dict.fromkeys([named[value] for value in self.kinds[f.kind].stands_on(f)
                                                  if value in named] + spec_refs) if ref != (self.name, f.key)]

        growing = True
        while growing:  # what a kept resource stands on is kept, and what that stands on, in any kind's order
            growing = False
            for f in [f for f in everything if why(f)]:
                for step, key in under(f):
                    if step == self.name and key not in keeping:
                        keeping[key] = f"{f.kind} {f.name} (kept) stands on it"
                        growing = True
        changes, deleted = [], []
        for f in everything:
            reason = why(f)
            if reason:
                changes.append(keep(self.name, f.kind, f.key, f.name, f.id, reason, under(f), found=f))
            else:
                changes.append(self._delete_change(f, "", state))
                deleted.append(f)
        return self._clear_changes(deleted) + changes

    # apply

    def apply(self, ctx: StepContext, changes: Sequence[Change], state: StepState) -> list[str]:
        """Carry out ``changes``; ``state`` follows what is found, made and deleted, so the step's
        :meth:`outputs` of it (which the engine records after the apply) are what exists now."""
        return _Apply(self, ctx, state).run(changes)

    def resource_count(self, spec: Spec, state: StepState) -> int:
        return len([d for d in self.wanted(spec, state) if not d.parent])

    def outputs(self, state: StepState) -> dict[str, Any]:
        values: dict[str, Any] = dict(state.ids())
        for found in state.found.values():
            if not found.parent:
                values.update({f"{found.key}/{name}": value
                               for name, value in self.kinds[found.kind].outputs(found).items()})
        return values

    def inventory(self, state: StepState) -> Table:
        everything = list(state.found.values()) + state.strays
        rows = [(f.kind, f.name, f.id, self.kinds[f.kind].describe_among(f, everything))
                for f in everything if not f.parent]
        return Table(["resource", "name", "id", "detail"], rows, title=f"{self.name}: {len(rows)} resources")


class _Apply:
    """One apply of a :class:`ResourceStep`: the changes in order, what waits for a resource to settle
    (:attr:`Kind.deferred`), and the deletes that finish later (:attr:`Kind.lingers`)."""

    def __init__(self, step: ResourceStep, ctx: StepContext, state: StepState) -> None:
        self.step, self.ctx, self.state = step, ctx, state
        self.order = list(step.kinds)
        self.settled: set[str] = set()  # keys waited for in this apply
        self.waiting: list[Change] = []  # changes that need an unsettled resource
        self.going: list[Found] = list(state.leaving)  # deletes of lingering kinds, not waited for yet
        self.lock = threading.Lock()

    def run(self, changes: Sequence[Change]) -> list[str]:
        """Carry out ``changes`` in order. Under ``up --parallel N`` (``ctx.parallel`` above 1) a run of
        creates is made side by side, :data:`~pointapp.concurrency.CHANGES_AT_ONCE` at a time: each once the
        resources of this step its props Ref and those of the kinds it :attr:`Kind.creates_after` exist."""
        ctx, step = self.ctx, self.step
        warnings: list[str] = []
        step._collect_refs(ctx, self.state)  # a plan made before a step it uses was applied
        resolver = step._resolver(self.state, strict=True)
        pending = [c for c in changes if c.action != "keep"]
        while pending:
            batch = [pending[0]]
            if ctx.parallel > 1 and pending[0].op == "create":
                batch = list(itertools.takewhile(lambda c: c.op == "create" and "desired" in c.args, pending)) or batch
            pending = pending[len(batch):]
            notes = run_graph([(id(change), ctx.as_this_work(functools.partial(self.carry_out, change, resolver)))
                               for change in batch], self._create_order(batch) if len(batch) > 1 else {},
                              CHANGES_AT_ONCE)
            warnings += [note for change in batch for note in notes[id(change)]]
        warnings += self._settle_later(resolver)
        self._await_going(-1)
        return warnings

    def _create_order(self, creates: Sequence[Change]) -> dict[int, list[int]]:
        """What each of ``creates`` waits for: the creates its props Ref, and those of the kinds it creates after."""
        kinds = self.step.kinds
        by_key = {change.args["desired"].key: id(change) for change in creates}
        after: dict[int, list[int]] = {}
        for change in creates:
            named = kinds[change.kind].creates_after
            earlier = self.order[:self.order.index(change.kind)] if named is None else named
            refs = {ref.key for ref in _refs(change.args["desired"].props) if ref.step == self.step.name}
            after[id(change)] = [id(c) for c in creates if c.kind in earlier] + [by_key[k] for k in refs if k in by_key]
        return after

    def _unsettled(self, change: Change) -> list[Found]:
        """The resources of this step that ``change`` Refs and that have not settled yet."""
        desired = change.args.get("desired")
        if desired is None or change.action == "delete":
            return []
        found = [self.state.found.get(ref.key) for ref in _refs(desired.props) if ref.step == self.step.name]
        return [f for f in found if f is not None and f.key not in self.settled and self.step.kinds[f.kind].unsettled(f)]

    def _settle_later(self, resolver: Resolver) -> list[str]:
        """Wait for what is unsettled (made now, or found so), then carry out the changes that waited for it:
        later, as deferred work, for a kind that says so (the steps that do not need it go on meanwhile)."""
        by_kind: dict[str, list[Found]] = {}
        for found in self.state.found.values():
            if found.key not in self.settled and self.step.kinds[found.kind].unsettled(found):
                by_kind.setdefault(found.kind, []).append(found)
        warnings: list[str] = []
        for name, starting in by_kind.items():
            kind = self.step.kinds[name]
            waiting = [c for c in self.waiting if any(f.kind == name for f in self._unsettled(c))]
            self.waiting = [c for c in self.waiting if c not in waiting]

            def finish(kind: Kind = kind, starting: list[Found] = starting, waiting: list[Change] = waiting) -> None:
                with self.ctx.at_work(self.step.name):  # the step's work, whichever step's thread runs it
                    kind.settle(self.ctx, starting)
                    self.settled.update(f.key for f in starting)
                    for change in waiting:
                        warnings.extend(self.carry_out(change, resolver))

            if kind.deferred:
                self.ctx.say(f"  {kind.settling(starting)}")
                self.ctx.defer(kind.deferred, finish)
            else:
                finish()
        for change in self.waiting:  # what waited for a resource that settled meanwhile
            warnings += self.carry_out(change, resolver)
        return warnings

    def _await_going(self, before: int) -> None:
        """Wait for the lingering deletes of the kinds after index ``before`` in the step's kinds: what may stand
        on a resource of the kind at ``before`` (all of them for -1)."""
        going = [f for f in self.going if self.order.index(f.kind) > before]
        if not going:
            return
        self.going = [f for f in self.going if f not in going]
        for name in dict.fromkeys(f.kind for f in going):
            self.step.kinds[name].await_gone(self.ctx, [f for f in going if f.kind == name])

    def carry_out(self, change: Change, resolver: Resolver) -> list[str]:
        """One change; the warnings it gives."""
        ctx, name = self.ctx, self.step.name
        warnings: list[str] = []
        ctx.check_stopping()
        if self._unsettled(change):
            with self.lock:
                self.waiting.append(change)
            return warnings
        kind = self.step.kinds[change.kind]
        skip = change.args.get("skip")
        if skip:
            ctx.skipped.append(change)
            ctx.say(f"  {change.outcome_line('skipped')}: {skip}")
            if change.action != "create":  # a create the target lacks the service for is told in the plan
                warnings.append(f"{change.kind} {change.name}: {skip}")
            return warnings
        if change.args.get("taken"):
            raise StepError(name, f"{change.kind} {change.name}",
                            f"exists and belongs to environment {change.args['taken']} (its pointapp:environment "
                            "tag); pointapp never takes over another environment's resource: give this "
                            "environment its own in the spec")
        try:
            if change.op == "create":
                desired: Desired = change.args["desired"]
                self.state.found[desired.key] = kind.create(ctx, desired, resolve(desired.props, resolver),
                                                            change.args["tags"])
            elif change.op == "update":
                self._update(kind, change, resolver)
            elif change.op == "delete":
                warnings += self._delete(kind, change)
            else:  # the kind's clearing update (Kind.clears)
                kind.clear(ctx, change.args["found"])
            if change not in ctx.skipped:
                ctx.done.append(change)
                ctx.say(f"  {change.outcome_line()}")  # one line per change, once done: not the plan again
        except Unresolved as missing:
            if missing.ref.step == "runtime":
                need = f"needs {missing.ref.key}, known once the steps {name} depends on are up"
            else:
                need = (f"needs {missing.ref.key} of step {missing.ref.step}, which does not exist: "
                        f"run `pointapp up --only {missing.ref.step}` first")
            raise StepError(name, f"{change.kind} {change.name}", need) from None
        except botocore.exceptions.ClientError as error:
            raise step_error(name, change, error) from error
        return warnings

    def _delete(self, kind: Kind, change: Change) -> list[str]:
        found: Found = change.args["found"]
        self._await_going(self.order.index(found.kind))
        try:
            note = kind.delete(self.ctx, found)
        except LeftStanding as standing:
            return [str(standing)]
        if kind.lingers:
            self.going.append(found)
        if self.state.found.get(found.key) is found:
            del self.state.found[found.key]
        if not note:
            return []
        self.ctx.skipped.append(change)
        self.ctx.say(f"  {change.outcome_line('skipped')}: {note}")
        return [f"{change.kind} {change.name}: {note}"]

    def _update(self, kind: Kind, change: Change, resolver: Resolver) -> None:
        """The tags first (their own call), then what else differs: the kind's update never sees tags."""
        desired: Desired = change.args["desired"]
        differences: Mapping[str, Any] = change.args["differences"]
        found = self.state.found.get(desired.key) or change.args["found"]  # or as AWS made it with its parent
        props = resolve(desired.props, resolver)
        if "tags" in differences:
            kind.tag(self.ctx, found, differences["tags"])
        settings = {key: value for key, value in differences.items() if key != "tags"}
        if settings:
            kind.update(self.ctx, desired, props, found, settings)


def client_error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_absent(code: str) -> bool:
    """An AWS error code saying the resource (or its attachment) is not there: for a delete, done already.

    EC2 writes them ``InvalidSubnetID.NotFound``, ``InvalidAssociationID.NotFound``, ``Gateway.NotAttached``
    (EC2 API reference, error codes)."""
    return code.endswith(("NotFound", ".NotAttached"))


def ignore_absent(call: Callable[..., Any], **kwargs: Any) -> Any:
    """Call; an error saying the resource is not there (:func:`is_absent`) counts as success (None)."""
    try:
        return call(**kwargs)
    except botocore.exceptions.ClientError as error:
        if is_absent(client_error_code(error)):
            return None
        raise


def step_error(step: str, change: Change, error: botocore.exceptions.ClientError) -> StepError:
    """The one-line error an AWS refusal of ``change`` becomes: the step, the resource, AWS's message and code."""
    info = error.response.get("Error", {})
    return StepError(step, f"{change.kind} {change.name}", info.get("Message", str(error)), info.get("Code"))


def ignore_codes(call: Callable[..., Any], codes: Iterable[str], **kwargs: Any) -> Any:
    """Call; an error whose code is in ``codes`` (say, not found on delete) counts as success."""
    try:
        return call(**kwargs)
    except botocore.exceptions.ClientError as error:
        if client_error_code(error) in set(codes):
            return None
        raise


def wait_for(ctx: StepContext, client: Any, waiter: str, what: str, typical: Typical | None, real_delay: int = 15,
             max_attempts: int = 120, **kwargs: Any) -> dict[str, Any]:
    """A boto3 waiter that says what it waits for, how long that usually takes (``typical``, the figure
    the schedule adds up too), and how long it took. A wait that gives up is an error of the step the
    calling thread works for (``ctx.work_of_step``).

    Returns the waiter's last answer (the description that showed the state waited for), so the caller
    need not describe the resource once more.
    """
    import threading
    import time

    usually = f" (usually {typical.spoken} on AWS)" if typical else ""
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
        raise StepError(ctx.work_of_step or "wait", what, f"gave up after {time.monotonic() - started:.0f}s: {reason}") from None
    finally:
        client.meta.events.unregister(event, keep)
    ctx.say(f"    {finished(f'{what}: done', time.monotonic() - started, typical, ctx.target.is_real_aws)}")
    return last.get("answer", {})


#: How long a role made moments ago usually takes to become usable by the service that checks it.
NEW_ROLE = Typical("new-role", 30, "a new IAM role becoming usable by the service that checks it",
                   "IAM User Guide, Troubleshoot IAM: changes that I make are not always immediately visible")

#: How long a new role may take to become usable: about two minutes on AWS.
ROLE_PROPAGATION_AWS = 120.0
#: How long any refusal that passes is retried on an emulator (its windows last seconds).
PROPAGATION_EMULATOR = 10.0


@dataclass(frozen=True)
class PassingRefusal:
    """How a service refuses, for a while, a resource made moments before: the error code, and the message as a
    pattern in which ``{role}`` stands for the resource's name (a role's, an instance profile's; a pattern
    without it matches whatever it names).

    The defaults are a role IAM has not propagated yet: IAM is eventually consistent, so a role made seconds ago
    may not be usable yet by the service that checks it when a resource naming it is created (IAM User Guide,
    "Troubleshoot IAM": changes that I make are not always immediately visible). Another refusal says what the
    wait is for (``waiting_for``, with ``{name}`` and ``{service}``), what to check when it lasts
    (``otherwise``) and how long it may last on AWS (``bound``).
    """

    service: str
    code: str
    pattern: str
    typical: Typical = NEW_ROLE
    waiting_for: str = "IAM to make {name} usable by {service}"
    otherwise: str = "check the role's trust policy"
    bound: float = ROLE_PROPAGATION_AWS

    def matches(self, error: botocore.exceptions.ClientError, role: str) -> bool:
        """This refusal, naming ``role``: nothing else (another role, another reason, another code)."""
        info = error.response.get("Error", {})
        named = rf"(?:\S*/)?{re.escape(role)}(?=\.?$|['\"\s)])"  # the name alone, or an ARN ending in it
        return info.get("Code") == self.code and re.match(self.pattern.format(role=named),
                                                          str(info.get("Message", ""))) is not None


# CodeDeploy CreateDeploymentGroup/UpdateDeploymentGroup (aws/aws-sdk-ruby #772: "a propagation issue").
CODEDEPLOY_ROLE = PassingRefusal("CodeDeploy", "InvalidRoleException",
                                 "AWS CodeDeploy does not have the permissions required to assume the role {role}")
# CodePipeline CreatePipeline/UpdatePipeline (hashicorp/terraform-provider-aws #13103, hashicorp/terraform #19264).
CODEPIPELINE_ROLE = PassingRefusal("CodePipeline", "InvalidStructureException",
                                   "CodePipeline is not authorized to perform AssumeRole on role {role}")
# EC2 CreateFlowLogs with DeliverLogsPermissionArn (hashicorp/terraform-provider-aws #29323).
FLOW_LOGS_ROLE = PassingRefusal("VPC Flow Logs", "InvalidParameter", "Unable to assume given IAM role: '?{role}")
# EC2 RunInstances naming a new instance profile (the answer terraform-provider-aws retries on RunInstances).
INSTANCE_PROFILE = PassingRefusal("EC2", "InvalidParameterValue",
                                  r"Value \({role}\) for parameter iamInstanceProfile\.name is invalid",
                                  Typical("instance-profile", 10, "a new instance profile becoming visible to EC2",
                                          "IAM User Guide, eventual consistency of changes"))

T = TypeVar("T")


def retry_refused(ctx: StepContext, refusal: PassingRefusal, role: str, call: Callable[[], T]) -> T:
    """``call()``, a create naming ``role`` (made moments before), retried with backoff while ``refusal``
    answers for it, within ``refusal.bound`` seconds on AWS and :data:`PROPAGATION_EMULATOR` elsewhere. Any
    other error is raised at once; the last refusal is raised once the bound is reached.

    ``role`` is the resource's ARN or name (a role's, an instance profile's, a load balancer's). ``ctx.clock``
    and ``ctx.sleep`` measure and wait (tests give their own).
    """
    name = role.rsplit("/", 1)[-1]
    bound = refusal.bound if ctx.target.is_real_aws else PROPAGATION_EMULATOR
    started = ctx.clock()
    delay, attempt = 2, 0
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as error:
            if not refusal.matches(error, name):
                raise
            waited, pause = ctx.clock() - started, ctx.wait_delay(delay)
            if waited + pause > bound:
                ctx.say(f"    {refusal.service} still refuses {name} after {waited:.0f}s: {refusal.otherwise}")
                raise
            if attempt == 0:
                ctx.say(f"    waiting for {refusal.waiting_for.format(name=name, service=refusal.service)} "
                        f"(usually {refusal.typical.spoken} on AWS) ...")
        ctx.sleep(pause)
        delay, attempt = min(delay * 2, 15), attempt + 1
