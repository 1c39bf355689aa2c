"""Where pointapp works: the embedded emulator, an endpoint, or real AWS; and the run context.

Resolution, in order: an explicit endpoint (``endpoint_url`` or ``AWS_ENDPOINT_URL``); real AWS when
asked for (``aws=True`` or a profile); otherwise the embedded emulator. Real AWS is never the default.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import boto3
import botocore.exceptions
from botocore.config import Config

from pointapp.emulator import EMULATOR_CREDENTIALS, Emulator
from pointapp.errors import ConfirmationRequired, TargetError
from pointapp.spec import PARTITIONS, Spec, check_region, load_spec

DEFAULT_REGION = "ap-northeast-1"

TargetKind = Literal["emulator", "endpoint", "aws"]


@dataclass(frozen=True)
class Target:
    """What to talk to. ``endpoint_url`` is set for the emulator and endpoint kinds."""

    kind: TargetKind
    region: str
    endpoint_url: str | None = None
    profile: str | None = None

    @property
    def is_real_aws(self) -> bool:
        return self.kind == "aws"

    def describe(self) -> str:
        if self.kind == "aws":
            profile = f" (profile {self.profile})" if self.profile else ""
            return f"real AWS{profile}, region {self.region}"
        what = "embedded emulator" if self.kind == "emulator" else "endpoint"
        return f"{what} {self.endpoint_url}, region {self.region}"


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region botocore knows for EC2, across the standard partitions.

    Read once per process: botocore's region list is data shipped with it, and reading it needs a new
    session that parses the endpoint data again (about a third of a second per ``connect``)."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in PARTITIONS:
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return frozenset(regions)


def resolve_target(*, region: str | None = None, endpoint_url: str | None = None, aws: bool = False,
                   profile: str | None = None, environ: Mapping[str, str] | None = None) -> Target:
    """Decide the target from the options and the environment; raises :class:`TargetError`."""
    environ = os.environ if environ is None else environ
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    check_region(region)  # a region of an isolated partition: pointapp cannot build its ARNs and principals
    if region not in known_regions():
        raise TargetError(f"--region: unknown region {region!r}; use an AWS region name such as {DEFAULT_REGION}")
    if endpoint_url and (aws or profile):
        raise TargetError("--endpoint-url cannot be combined with --aws or --profile; choose one target")
    if aws or profile:
        return Target("aws", region, None, profile or None)
    endpoint_url = endpoint_url or environ.get("AWS_ENDPOINT_URL") or None
    if endpoint_url:
        parsed = urlparse(endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise TargetError(f"--endpoint-url: {endpoint_url!r} is not a URL such as http://127.0.0.1:5000")
        return Target("endpoint", region, endpoint_url.rstrip("/"))
    return Target("emulator", region)


READ_PREFIXES = ("Describe", "Get", "List", "Head", "BatchGet")


@dataclass(frozen=True)
class Call:
    """One AWS API call as seen by botocore, before it is sent."""

    service: str
    operation: str

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


#: Operations the embedded emulator (moto) does not implement. On AWS they run; on the emulator the step
#: says plainly that it skipped them.
EMULATOR_GAPS: dict[tuple[str, str], str] = {
    ("codedeploy", "DeleteApplication"): "",
    ("codedeploy", "DeleteDeploymentGroup"): "",
    ("codedeploy", "UpdateDeploymentGroup"): "",
    ("codedeploy", "StopDeployment"): "",
    ("codedeploy", "RunDeployment"): "the emulator records deployments but never runs them",
    ("elasticache", "ReplicaNodes"): "the emulator makes one node whatever the replica count",
    ("elasticache", "FinishDeletion"): "the emulator leaves a deleted replication group 'deleting'",
    ("elasticache", "DeleteCacheSubnetGroup"): "",
    ("elasticache", "ModifyCacheSubnetGroup"): "",
    ("amplify", "Amplify"): "the emulator has no Amplify; on AWS pointapp calls it here, and nothing was changed now",
}


#: The delay between polls on an emulator. One poll outlasts what the tests' AWS-like emulator keeps
#: "for a while" (0.5 s), so a retried call is retried once, however busy the machine: the fault runs
#: compare the order of a run's calls with a clean run's.
EMULATOR_POLL_SECONDS = 1.0


def _answers_as_moto(url: str | None) -> bool:
    if not url:
        return False
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=5) as answer:  # noqa: S310 - http(s) only
            return bool(200 <= answer.status < 300)
    except (OSError, ValueError):
        return False


_MODELS: list[Any] = []  # the botocore loader of the first session, holding every service model it parsed


def share_service_models(session: boto3.Session) -> boto3.Session:
    """Let ``session`` reuse the service models earlier sessions of this process parsed.

    Every new boto3 session parses each service's JSON model again (about 0.4 s for the services of a
    run); runs in one process (a notebook, the tests, the benchmark) share them instead. The models are
    read-only data, so sharing them changes nothing else.
    """
    core = session._session  # noqa: SLF001 - boto3 exposes the botocore session only under this name
    if not _MODELS:
        _MODELS.append(core.get_component("data_loader"))
    elif core.get_component("data_loader") is not _MODELS[0]:
        core.register_component("data_loader", _MODELS[0])
    return session


def _print_progress(message: str) -> None:
    print(message + "\n", end="", flush=True)  # one write per line: steps running side by side do not mix lines


class _Deferred:
    """Work that runs once; a second caller waits for the first to finish it."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.work = work
        self.lock = threading.Lock()
        self.done = False

    def run(self) -> None:
        with self.lock:
            if not self.done:
                self.work()
                self.done = True


@dataclass
class Context:
    """One run: the spec, the target, one boto3 session and the clients made from it.

    Clients are created once per context and share one botocore configuration (retries, timeouts).
    Every call is recorded in :attr:`calls`, which is how tests prove a no-op run mutates nothing.
    """

    spec: Spec
    target: Target
    session: boto3.Session
    assume_yes: bool = False
    progress: Callable[[str], None] = _print_progress
    emulator: Emulator | None = None
    calls: list[Call] = field(default_factory=list)
    emulated: bool | None = None  # None: find out (an endpoint may be moto or something else)
    skipped: list[Any] = field(default_factory=list)  # changes the target could not carry out
    done: list[Any] = field(default_factory=list)  # changes carried out in this run, in order
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _outputs: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _reads: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False)  # steps may run in threads (up --parallel)
    _local: Any = field(default_factory=threading.local, repr=False)
    _generation: int = field(default=0, repr=False)
    _step_locks: dict[str, Any] = field(default_factory=dict, repr=False)
    _deferred: dict[str, _Deferred] = field(default_factory=dict, repr=False)
    stopping: bool = False  # set on Ctrl-C while steps run in threads: each stops before its next change
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)  # what waits measure (tests give their own)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)  # how waits pause between attempts

    def __post_init__(self) -> None:
        share_service_models(self.session)
        self.session.events.register("before-call.*.*", self._record_call)

    def _record_call(self, model: Any, **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name)
        self.calls.append(call)
        if call.mutating:
            with self._lock:  # whatever was read before a change may be stale now
                self._generation += 1
                self._reads.clear()

    def read_once(self, key: Any, load: Callable[[], Any]) -> Any:
        """A listing several steps need (every IAM role, every log group), read once until the next change."""
        with self._lock:
            if key in self._reads:
                return self._reads[key]
            generation = self._generation
        value = load()
        with self._lock:
            if generation == self._generation:  # no change made meanwhile (by another step's thread)
                self._reads[key] = value
        return value

    @property
    def botocore_config(self) -> Config:
        """The one botocore configuration of every client: bounded standard retries and timeouts."""
        return Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=10, read_timeout=60,
                      ignore_configured_endpoint_urls=self.target.is_real_aws)

    def client(self, service: str) -> Any:
        """The client for ``service``, made on first use and reused for the rest of the run."""
        with self._lock:  # boto3 makes clients one at a time; once made, a client is safe across threads
            return self._client(service)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, region_name=self.target.region, endpoint_url=self.target.endpoint_url,
                config=self.botocore_config)
        return self._clients[service]

    def lacks(self, service: str, operation: str) -> str | None:
        """Why the target cannot run ``operation`` (the emulator lacks it), or None when it can."""
        if (service, operation) not in EMULATOR_GAPS:
            return None
        if self.emulated is None:
            self.emulated = self.target.kind == "emulator" or (
                self.target.kind == "endpoint" and _answers_as_moto(self.target.endpoint_url))
        if not self.emulated:
            return None
        return EMULATOR_GAPS[(service, operation)] or (
            f"the emulator does not implement {service} {operation}; on AWS pointapp calls it here, "
            "and nothing was changed now")

    @property
    def account(self) -> str:
        """The AWS account id of the target (asked once)."""
        if "account" not in self._outputs:
            self._outputs["account"] = {"id": str(self.client("sts").get_caller_identity()["Account"])}
        return self._outputs["account"]["id"]

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.target.region)

    def outputs(self, step: str) -> dict[str, str]:
        """The ids a step exposes to the steps that use it, discovered once per run until it changes."""
        with self._lock:
            lock = self._step_locks.setdefault(step, threading.Lock())
        with lock:  # two steps running side by side that use the same step discover it once
            if step not in self._outputs:
                from pointapp.steps import get

                module = get(step).load()
                self._outputs[step] = module.outputs(module.discover(self))
            return self._outputs[step]

    def remember_outputs(self, step: str, outputs: dict[str, str]) -> None:
        self._outputs[step] = outputs

    def forget_outputs(self, step: str) -> None:
        self._outputs.pop(step, None)

    def defer(self, key: str, work: Callable[[], None]) -> None:
        """Leave ``work`` (a slow resource's wait and what must follow it) for later: a step that needs it
        done calls :meth:`finish_deferred` there, and the end of ``up`` finishes whatever is left."""
        with self._lock:
            self._deferred[key] = _Deferred(work)

    def finish_deferred(self, key: str | None = None) -> None:
        """Carry out the deferred work ``key`` (all of it when None), once, whichever thread asks first."""
        with self._lock:
            chosen = [(k, d) for k, d in self._deferred.items() if key is None or k == key]
        for name, deferred in chosen:
            if not deferred.done:
                self.say(f"needs {name} first")
            deferred.run()
            with self._lock:
                if self._deferred.get(name) is deferred:
                    del self._deferred[name]

    @property
    def mutating_calls(self) -> list[Call]:
        return [call for call in self.calls if call.mutating]

    def say(self, message: str) -> None:
        """Report progress; in a step running beside others, each line starts with the step's name."""
        label = getattr(self._local, "label", None)
        self.progress(f"[{label}] {message.strip()}" if label else message)

    def check_stopping(self) -> None:
        """Between two changes: stop here when the run was interrupted (Ctrl-C in another thread)."""
        if self.stopping:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def at_work(self, step: str, label: str | None = None) -> Iterator[None]:
        """Within: the calling thread does ``step``'s work (:attr:`work_of_step`), its own or deferred work
        of that step. Its progress lines start with ``label``; without one, a thread whose lines are
        labelled (steps side by side) labels them with ``step``, and an unlabelled one stays so."""
        saved = getattr(self._local, "step", None), getattr(self._local, "label", None)
        self._local.step = step
        if label is not None or saved[1] is not None:
            self._local.label = label or step
        try:
            yield
        finally:
            self._local.step, self._local.label = saved

    @property
    def work_of_step(self) -> str | None:
        """The step whose work the calling thread is doing (None outside ``apply``)."""
        return getattr(self._local, "step", None)

    def wait_delay(self, real_seconds: int) -> float:
        """The delay between waiter polls: real AWS is polled gently (``real_seconds``), an emulator
        quickly (:data:`EMULATOR_POLL_SECONDS`)."""
        return real_seconds if self.target.is_real_aws else EMULATOR_POLL_SECONDS

    def require_confirmation(self, what: str) -> None:
        """Refuse a change to real AWS unless it was confirmed (``--yes`` or ``yes=True``)."""
        if self.target.is_real_aws and not self.assume_yes:
            raise ConfirmationRequired(f"{what} changes real AWS ({self.target.describe()}); "
                                       "confirm with --yes (or yes=True in a notebook)")

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
    return share_service_models(_new_session(target))


def _new_session(target: Target) -> boto3.Session:
    if target.kind == "emulator":
        return boto3.Session(region_name=target.region, **EMULATOR_CREDENTIALS)
    try:
        session = boto3.Session(profile_name=target.profile, region_name=target.region)
    except botocore.exceptions.ProfileNotFound:
        available = ", ".join(boto3.Session().available_profiles) or "none"
        raise TargetError(f"--profile: AWS profile {target.profile!r} not found; available: {available}") from None
    if session.get_credentials() is None and target.kind == "endpoint" and _is_loopback(target.endpoint_url):
        # An endpoint on this machine is an emulator: it accepts any credentials.
        return boto3.Session(region_name=target.region, **EMULATOR_CREDENTIALS)
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
        raise TargetError(f"cannot reach {where}: is the endpoint running? (--endpoint-url / AWS_ENDPOINT_URL)") from None
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
            progress: Callable[[str], None] | None = None, environ: Mapping[str, str] | None = None) -> Context:
    """Load and validate the spec, resolve the target, start the emulator if needed, and check access.

    ``overrides`` (a mapping) is merged over the config file. The spec is validated before anything
    else, so a bad spec never causes an AWS call. With neither an endpoint nor real AWS asked for, an
    embedded emulator starts and stops when the context is closed (or at interpreter exit).
    """
    spec = load_spec(env, config or None, overrides)
    environ = os.environ if environ is None else environ
    target = resolve_target(region=region or None, endpoint_url=endpoint_url or None, aws=aws,
                            profile=profile or None, environ=environ)
    emulator = None
    if target.kind == "emulator":
        emulator = Emulator()
        target = Target("emulator", target.region, emulator.start())
        atexit.register(emulator.stop)
    try:
        session = _make_session(target, environ)
        account = check_reachable(session, target)
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise
    ctx = Context(spec=spec, target=target, session=session, assume_yes=yes,
                  progress=progress or _print_progress, emulator=emulator,
                  emulated=True if emulator else (False if target.is_real_aws else None))
    ctx.remember_outputs("account", {"id": account})  # the reachability check already asked STS
    return ctx

