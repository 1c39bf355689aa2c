"""AWS access for one run: the boto3 clients, the log of every call, the read cache, and who the target is."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.config import Config

from pointapp.concurrency import InFlight

if TYPE_CHECKING:  # the target module makes the Target and composes the context around these clients
    import boto3

    from pointapp.target import Target

T = TypeVar("T")

READ_PREFIXES = ("Describe", "Get", "List", "Head", "BatchGet")


@dataclass(frozen=True)
class Call:
    """One AWS API call as seen by botocore, before it is sent."""

    service: str
    operation: str

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_PREFIXES)


class Clients:
    """One boto3 session's clients for a target, made once each and sharing one botocore configuration.

    Every call is recorded in :attr:`calls` (how tests prove a no-op run mutates nothing); any mutating
    call clears the read cache, since whatever was read before a change may be stale now.
    """

    def __init__(self, session: boto3.Session, target: Target, in_flight: InFlight | None = None) -> None:
        self.session = session
        self.target = target  # a test may point a made context at another target before its first client
        self.calls: list[Call] = []
        self.made: dict[str, Any] = {}
        self._account: str | None = None
        self._reads: dict[Hashable, Any] = {}
        self._read_gates: dict[Hashable, threading.Lock] = {}
        self._generation = 0
        self._lock = threading.RLock()  # steps may run in threads (up --parallel, discovery side by side)
        self._making = threading.Lock()  # apart from the read cache's: making a client takes a while
        self._account_lock = threading.Lock()
        #: The requests in flight at once, over every client and thread of the run (see :mod:`pointapp.concurrency`).
        self.in_flight = in_flight or InFlight()
        session.events.register("before-call.*.*", self._record_call)
        self.in_flight.register(session.events)

    def _record_call(self, model: Any, **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name)
        self.calls.append(call)
        if call.mutating:
            with self._lock:
                self._generation += 1
                self._reads.clear()

    @property
    def mutating_calls(self) -> list[Call]:
        return [call for call in self.calls if call.mutating]

    def read_once(self, key: Hashable, load: Callable[[], T]) -> T:
        """A listing several steps need (every IAM role, every log group), read once until the next change.

        Steps discovered side by side that ask for the same listing at once wait for the first to read it.
        """
        with self._lock:
            if key in self._reads:
                value: T = self._reads[key]
                return value
            gate = self._read_gates.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._reads:
                    value = self._reads[key]
                    return value
                generation = self._generation
            loaded = load()
            with self._lock:
                if generation == self._generation:  # no change made meanwhile (by another step's thread)
                    self._reads[key] = loaded
            return loaded

    def forget_reads(self) -> None:
        """Drop every listing read so far: the next reads see what changed outside this run meanwhile (a new
        discovery starts so, and its steps and kinds share its reads again)."""
        with self._lock:
            self._generation += 1
            self._reads.clear()

    @property
    def botocore_config(self) -> Config:
        """The one botocore configuration of every client: bounded standard retries and timeouts."""
        return Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=10, read_timeout=60,
                      ignore_configured_endpoint_urls=self.target.is_real_aws)

    def client(self, service: str) -> Any:
        """The client for ``service``, made on first use and reused for the rest of the run."""
        made = self.made.get(service)
        if made is not None:
            return made
        with self._making:  # a session makes one client at a time; once made, a client is safe across threads
            if service not in self.made:
                self.made[service] = self.session.client(
                    service, region_name=self.target.region, endpoint_url=self.target.endpoint_url,
                    config=self.botocore_config)
            return self.made[service]

    @property
    def account(self) -> str:
        """The AWS account id of the target (asked once)."""
        with self._account_lock:  # steps discovered side by side ask STS once
            if self._account is None:
                self._account = str(self.client("sts").get_caller_identity()["Account"])
            return self._account

    @account.setter
    def account(self, account: str) -> None:
        self._account = account  # known already (the reachability check asked STS)

    @property
    def partition(self) -> str:
        return str(self.session.get_partition_for_region(self.target.region))
