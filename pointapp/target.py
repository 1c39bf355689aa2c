"""Where pointapp works: the shared emulator, the embedded one, an endpoint, or real AWS; and the run context.

Resolution, in order: the embedded per-process emulator when asked for (``ephemeral=True``, ``--ephemeral``);
an explicit endpoint (``endpoint_url`` or ``AWS_ENDPOINT_URL``); real AWS when asked for (``aws=True`` or a
profile); otherwise the shared emulator (:mod:`pointapp.shared_emulator`), or the embedded one when
``$POINTAPP_EMULATOR`` is ``ephemeral``. Real AWS is never the default.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlparse

import boto3
import botocore.exceptions
from botocore.config import Config

from pointapp import shared_emulator
from pointapp.clients import READ_PREFIXES, Call, Clients
from pointapp.concurrency import InFlight
from pointapp.context import StepContext
from pointapp.emulator import EMULATOR_CREDENTIALS, EMULATOR_POLL_SECONDS, Emulator, EmulatorGaps
from pointapp.errors import ConfirmationRequired, TargetError
from pointapp.plan import Change
from pointapp.run import DeferredWork, Outputs, Progress, Record, print_progress
from pointapp.sessions import known_regions, new_session, share_service_models
from pointapp.spec import Spec, check_region, load_spec

__all__ = ["EMULATOR_POLL_SECONDS", "READ_PREFIXES", "Call", "Context", "Target", "connect", "known_regions",
           "resolve_target", "share_service_models"]

T = TypeVar("T")


class _OfPart(Generic[T]):
    """An attribute of the context that one of its parts holds under the same name, read there (and set
    there, unless ``settable`` is False: the part alone changes it)."""

    def __init__(self, part: str, settable: bool = True) -> None:
        self.part = part
        self.settable = settable
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, ctx: object, owner: type | None = None) -> T:
        return getattr(getattr(ctx, self.part), self.name)  # type: ignore[no-any-return]  # the part's own attribute

    def __set__(self, ctx: object, value: T) -> None:
        if not self.settable:
            raise AttributeError(f"{self.name} of a context is its {self.part}'s to change")
        setattr(getattr(ctx, self.part), self.name, value)

DEFAULT_REGION = "ap-northeast-1"

#: ``emulator``: the embedded one, in this process; ``shared``: the shared one, in a process of its own.
TargetKind = Literal["emulator", "shared", "endpoint", "aws"]


@dataclass(frozen=True)
class Target:
    """What to talk to. ``endpoint_url`` is set for the emulator kinds (once started) and the endpoint;
    ``pid`` is the shared emulator's process."""

    kind: TargetKind
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    pid: int | None = None

    @property
    def is_real_aws(self) -> bool:
        return self.kind == "aws"

    def describe(self) -> str:
        if self.kind == "aws":
            profile = f" (profile {self.profile})" if self.profile else ""
            return f"real AWS{profile}, region {self.region}"
        where = f" {self.endpoint_url}" if self.endpoint_url else ""  # none yet: connect starts (or finds) it
        if self.kind == "shared":
            which = f"pid {self.pid}" if self.pid else "started by the first notebook or command that needs it"
            return f"shared emulator{where} ({which}; keeps its state until `pointapp emulator --stop`), region {self.region}"
        if self.kind == "emulator":
            return f"embedded emulator{where} (forgets its state when this process ends), region {self.region}"
        return f"endpoint {self.endpoint_url}, region {self.region}"


def resolve_target(*, region: str | None = None, endpoint_url: str | None = None, aws: bool = False,
                   profile: str | None = None, ephemeral: bool = False,
                   environ: Mapping[str, str] | None = None) -> Target:
    """Decide the target from the options and the environment; raises :class:`TargetError`.

    The emulator kinds come back without an endpoint: :func:`connect` starts (or finds) the emulator.
    """
    environ = os.environ if environ is None else environ
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    check_region(region)  # a region of an isolated partition: pointapp cannot build its ARNs and principals
    if region not in known_regions():
        raise TargetError(f"--region: unknown region {region!r}; use an AWS region name such as {DEFAULT_REGION}")
    if endpoint_url and (aws or profile):
        raise TargetError("--endpoint-url cannot be combined with --aws or --profile; choose one target")
    if ephemeral and (endpoint_url or aws or profile):
        raise TargetError("--ephemeral cannot be combined with --endpoint-url, --aws or --profile; choose one target")
    if ephemeral:
        return Target("emulator", region)
    if aws or profile:
        return Target("aws", region, None, profile or None)
    endpoint_url = endpoint_url or environ.get("AWS_ENDPOINT_URL") or None
    if endpoint_url:
        parsed = urlparse(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise TargetError(f"--endpoint-url: {endpoint_url!r} is not a URL such as http://127.0.0.1:5000")
        return Target("endpoint", region, endpoint_url.rstrip("/"))
    if shared_emulator.ephemeral_by_default(environ):
        return Target("emulator", region)
    shared_emulator.configured_port(environ)  # a bad port setting is refused before anything starts
    return Target("shared", region)


#: How a context finds the outputs of a step its run has not discovered yet. The step list sets it (it
#: discovers the step): this module sits below the steps and cannot name them.
_DISCOVER_OUTPUTS: list[Callable[[StepContext, str], dict[str, Any]]] = []


def discover_outputs_with(discover: Callable[[StepContext, str], dict[str, Any]]) -> None:
    """Let every context find a step's outputs with ``discover(ctx, step)`` when a step first asks for them."""
    _DISCOVER_OUTPUTS[:] = [discover]


class Context:
    """One run, made of small parts with one job each, and what steps see of it (:class:`StepContext`).

    - :attr:`clients` (:class:`pointapp.clients.Clients`): the boto3 clients, the call log, the read
      cache, the account and partition;
    - :attr:`gaps` (:class:`pointapp.emulator.EmulatorGaps`): what the target cannot do;
    - :attr:`step_outputs` (:class:`pointapp.run.Outputs`): what each step exposes, written by the engine;
    - :attr:`deferred` (:class:`pointapp.run.DeferredWork`): work left for later;
    - :attr:`progress_lines` (:class:`pointapp.run.Progress`): progress, labels, the interrupt flag, the clock;
    - :attr:`record` (:class:`pointapp.run.Record`): the changes done and skipped;
    - the spec, the confirmation (``assume_yes``) and the emulator this context started, if any.
    """

    def __init__(self, *, spec: Spec, target: Target, session: boto3.Session, assume_yes: bool = False,
                 progress: Callable[[str], None] = print_progress, emulator: Emulator | None = None,
                 emulated: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, in_flight: InFlight | None = None) -> None:
        share_service_models(session)
        self.spec = spec
        self.assume_yes = assume_yes
        self.emulator = emulator
        self.parallel = 1  # how many changes of one step may be made side by side (up --parallel; 1: in order)
        self.clients = Clients(session, target, in_flight)
        self.gaps = EmulatorGaps(emulated)  # None: find out (an endpoint may be moto or something else)
        self.progress_lines = Progress(progress, clock, sleep)
        self.record = Record()
        self.deferred = DeferredWork(self.say)
        self.step_outputs = Outputs(self._discover_outputs)

    def _discover_outputs(self, step: str) -> dict[str, Any]:
        if not _DISCOVER_OUTPUTS:
            raise LookupError(f"the outputs of step {step} are not known: import pointapp.engine to discover them")
        return _DISCOVER_OUTPUTS[0](self, step)

    # the spec and the target

    target: _OfPart[Target] = _OfPart("clients")
    session: _OfPart[boto3.Session] = _OfPart("clients", settable=False)

    def wait_delay(self, real_seconds: int) -> float:
        """The delay between waiter polls: real AWS is polled gently (``real_seconds``), an emulator
        quickly (:data:`pointapp.emulator.EMULATOR_POLL_SECONDS`)."""
        return real_seconds if self.target.is_real_aws else EMULATOR_POLL_SECONDS

    def require_confirmation(self, what: str) -> None:
        """Refuse a change to real AWS unless it was confirmed (``--yes`` or ``yes=True``)."""
        if self.target.is_real_aws and not self.assume_yes:
            raise ConfirmationRequired(f"{what} changes real AWS ({self.target.describe()}); "
                                       "confirm with --yes (or yes=True in a notebook)")

    # AWS access (Clients)

    def client(self, service: str) -> Any:
        """The client for ``service``, made on first use and reused for the rest of the run."""
        return self.clients.client(service)

    def read_once(self, key: Hashable, load: Callable[[], T]) -> T:
        """A listing several steps need (every IAM role, every log group), read once until the next change."""
        return self.clients.read_once(key, load)

    def forget_reads(self) -> None:
        """Drop the listings read so far (a new discovery reads afresh)."""
        self.clients.forget_reads()

    calls: _OfPart[list[Call]] = _OfPart("clients", settable=False)
    mutating_calls: _OfPart[list[Call]] = _OfPart("clients", settable=False)
    #: The requests in flight at once, over every client and thread of the run.
    in_flight: _OfPart[InFlight] = _OfPart("clients", settable=False)
    #: The AWS account id of the target (asked once), and its partition.
    account: _OfPart[str] = _OfPart("clients", settable=False)
    partition: _OfPart[str] = _OfPart("clients", settable=False)

    @property
    def _clients(self) -> dict[str, Any]:
        return self.clients.made  # tests put stubbed clients here

    def lacks(self, service: str, operation: str) -> str | None:
        """Why the target cannot run ``operation`` (the emulator lacks it), or None when it can."""
        return self.gaps.lacks(self.target, service, operation)

    emulated: _OfPart[bool | None] = _OfPart("gaps", settable=False)

    # other steps' outputs (Outputs)

    def outputs(self, step: str) -> dict[str, Any]:
        """The ids a step exposes to the steps that use it, discovered once per run until it changes."""
        return self.step_outputs.of(step)

    def outputs_lock(self, step: str) -> threading.Lock:
        """The lock held while ``step``'s outputs are being discovered (see :meth:`pointapp.run.Outputs.lock`)."""
        return self.step_outputs.lock(step)

    def remember_outputs(self, step: str, outputs: dict[str, Any]) -> None:
        self.step_outputs.remember(step, outputs)

    def forget_outputs(self, step: str) -> None:
        self.step_outputs.forget(step)

    # deferred work (DeferredWork)

    def defer(self, key: str, work: Callable[[], None]) -> None:
        """Leave ``work`` (a slow resource's wait and what must follow it) for later: a step that needs it
        done calls :meth:`finish_deferred` there, and the end of ``up`` finishes whatever is left."""
        self.deferred.defer(key, work)

    def finish_deferred(self, key: str | None = None) -> None:
        """Carry out the deferred work ``key`` (all of it when None), once, whichever thread asks first."""
        self.deferred.finish(key)

    # progress (Progress)

    def say(self, message: str) -> None:
        """Report progress; in a step running beside others, each line starts with the step's name."""
        self.progress_lines.say(message)

    def check_stopping(self) -> None:
        """Between two changes: stop here when the run was interrupted (Ctrl-C in another thread)."""
        self.progress_lines.check_stopping()

    def at_work(self, step: str, label: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within: the calling thread does ``step``'s work (see :meth:`pointapp.run.Progress.at_work`)."""
        return self.progress_lines.at_work(step, label)

    def as_this_work(self, work: Callable[[], T]) -> Callable[[], T]:
        """``work`` made to run, in another thread, as the calling thread's work (same step and label)."""
        return self.progress_lines.as_this_work(work)

    #: The step whose work the calling thread is doing (None outside ``apply``).
    work_of_step: _OfPart[str | None] = _OfPart("progress_lines", settable=False)
    progress: _OfPart[Callable[[str], None]] = _OfPart("progress_lines", settable=False)
    stopping: _OfPart[bool] = _OfPart("progress_lines")
    clock: _OfPart[Callable[[], float]] = _OfPart("progress_lines")
    sleep: _OfPart[Callable[[float], None]] = _OfPart("progress_lines")

    # the run's record (Record)

    done: _OfPart[list[Change]] = _OfPart("record", settable=False)
    skipped: _OfPart[list[Change]] = _OfPart("record", settable=False)

    # the emulator's lifecycle

    def close(self) -> None:
        """Stop the embedded emulator if this context started one."""
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_session(target: Target, environ: Mapping[str, str]) -> boto3.Session:
    if target.kind in ("emulator", "shared"):
        return new_session(region_name=target.region, **EMULATOR_CREDENTIALS)
    try:
        session = new_session(profile_name=target.profile, region_name=target.region)
    except botocore.exceptions.ProfileNotFound:
        available = ", ".join(boto3.Session().available_profiles) or "none"
        raise TargetError(f"--profile: AWS profile {target.profile!r} not found; available: {available}") from None
    if session.get_credentials() is None and target.kind == "endpoint" and _is_loopback(target.endpoint_url):
        # An endpoint on this machine is an emulator: it accepts any credentials.
        return new_session(region_name=target.region, **EMULATOR_CREDENTIALS)
    if session.get_credentials() is None:
        raise TargetError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, or pass --profile NAME")
    return session


def _is_loopback(url: str | None) -> bool:
    return (urlparse(url or "").hostname or "") in ("127.0.0.1", "localhost", "::1")


def check_reachable(session: boto3.Session, target: Target) -> str:
    """One STS call that proves the endpoint answers and the credentials are accepted; returns the account."""
    probe = session.client("sts", region_name=target.region, endpoint_url=target.endpoint_url,
                           config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5,
                                         read_timeout=30, ignore_configured_endpoint_urls=target.is_real_aws))
    where = target.endpoint_url or f"AWS in {target.region}"
    try:
        return str(probe.get_caller_identity()["Account"])
    except botocore.exceptions.EndpointConnectionError:
        hint = ("has the shared emulator stopped? `pointapp emulator --status` says; the next command starts a "
                "new one" if target.kind == "shared" else "is the endpoint running? (--endpoint-url / AWS_ENDPOINT_URL)")
        raise TargetError(f"cannot reach {where}: {hint}") from None
    except (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError):
        raise TargetError(f"no answer from {where} within the timeout") from None
    except botocore.exceptions.NoCredentialsError:
        raise TargetError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, or pass --profile NAME") from None
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise TargetError(f"the credentials were refused by {where} ({code})") from None


def connect(env: str = "prod", config: str | Path | Mapping[str, Any] | None = None, *,
            overrides: Mapping[str, Any] | None = None, region: str | None = None,
            endpoint_url: str | None = None, aws: bool = False, profile: str | None = None, yes: bool = False,
            ephemeral: bool = False, progress: Callable[[str], None] | None = None,
            environ: Mapping[str, str] | None = None) -> Context:
    """Load and validate the spec, resolve the target, start the emulator if needed, and check access.

    ``overrides`` (a mapping) is merged over the config file. The spec is validated before anything
    else, so a bad spec never causes an AWS call. With neither an endpoint nor real AWS asked for, the
    shared emulator is used: found running, or started now in the background, and left running (it keeps
    its state until ``pointapp emulator --stop``). With ``ephemeral`` (or ``$POINTAPP_EMULATOR=ephemeral``)
    an embedded emulator starts instead and stops when the context is closed (or at interpreter exit).
    """
    spec = load_spec(env, config or None, overrides)
    environ = os.environ if environ is None else environ
    target = resolve_target(region=region or None, endpoint_url=endpoint_url or None, aws=aws,
                            profile=profile or None, ephemeral=ephemeral, environ=environ)
    emulator = None
    if target.kind == "emulator":
        emulator = Emulator()
        target = Target("emulator", target.region, emulator.start())
        atexit.register(emulator.stop)
    elif target.kind == "shared":
        shared = shared_emulator.ensure(environ, say=progress or print_progress)
        target = Target("shared", target.region, shared.url, pid=shared.pid)
    elif target.kind == "endpoint":
        target = _as_shared(target, environ)
    try:
        session = _make_session(target, environ)
        account = check_reachable(session, target)
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    ctx = Context(spec=spec, target=target, session=session, assume_yes=yes,
                  progress=progress or print_progress, emulator=emulator,
                  # An endpoint is asked whether it is an emulator the first time a step asks about an operation
                  # the emulator lacks (EMULATOR_GAPS): once, and only where the answer changes anything.
                  emulated=True if target.kind in ("emulator", "shared") else (False if target.is_real_aws else None))
    ctx.clients.account = account  # the reachability check already asked STS
    return ctx


def _as_shared(target: Target, environ: Mapping[str, str]) -> Target:
    """An endpoint that is the running shared emulator (the runbook hands its URL to the kernels) is named so."""
    found = shared_emulator.running(environ) if _is_loopback(target.endpoint_url) else None
    if found is None or found.url != target.endpoint_url:
        return target
    return Target("shared", target.region, found.url, pid=found.pid)
