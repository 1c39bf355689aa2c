"""What a step sees of the run: :class:`StepContext`, the typed protocol steps and kinds take as ``ctx``.

:class:`pointapp.target.Context` implements it; a test may pass anything that has these members. A
function that needs less may ask for a narrower protocol (:class:`StepClients`, :class:`StepProgress`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # types only: the target module composes the context that implements this protocol
    import boto3

    from pointapp.plan import Change
    from pointapp.spec import Spec
    from pointapp.target import Target

T = TypeVar("T")


class StepClients(Protocol):
    """AWS access: one client per service, a read cache cleared by any change, and who the target is."""

    @property
    def target(self) -> Target: ...

    @property
    def session(self) -> boto3.Session: ...

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (boto3 clients are untyped: Any)."""

    def read_once(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()``, or what it returned for ``key`` before the last change of this run."""

    def lacks(self, service: str, operation: str) -> str | None:
        """Why the target cannot run ``operation`` (the emulator lacks it), or None when it can."""

    @property
    def account(self) -> str: ...

    @property
    def partition(self) -> str: ...


class StepProgress(Protocol):
    """What a step tells the person running it, and how it waits."""

    @property
    def clock(self) -> Callable[[], float]:
        """What waits measure time with (tests give their own)."""

    @property
    def sleep(self) -> Callable[[float], None]:
        """How waits pause between attempts."""

    def say(self, message: str) -> None:
        """One progress line."""

    def wait_delay(self, real_seconds: int) -> float:
        """The pause between two polls: ``real_seconds`` on AWS, less on an emulator."""

    def check_stopping(self) -> None:
        """Raise KeyboardInterrupt when the run was interrupted (between two changes)."""

    @property
    def work_of_step(self) -> str | None: ...

    def as_this_work(self, work: Callable[[], T]) -> Callable[[], T]:
        """``work`` made to run, in another thread, as the calling thread's work (same step and label)."""

    def at_work(self, step: str, label: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within: the calling thread does ``step``'s work; its lines start with ``label``."""


class StepContext(StepClients, StepProgress, Protocol):
    """Everything a step uses of the run: the spec, AWS access, progress, other steps' outputs, deferred
    work, confirmations and the run's record of changes done and skipped."""

    @property
    def spec(self) -> Spec: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def parallel(self) -> int:
        """How many changes of one step may be made side by side (``up --parallel``; 1: one after another)."""

    @property
    def done(self) -> list[Change]:
        """The changes carried out in this run, in order."""

    @property
    def skipped(self) -> list[Change]:
        """The changes the target could not carry out."""

    def outputs(self, step: str) -> dict[str, Any]:
        """The ids ``step`` exposes to the steps that use it (discovered on first use)."""

    def defer(self, key: str, work: Callable[[], None]) -> None:
        """Leave ``work`` for later; :meth:`finish_deferred` carries it out."""

    def finish_deferred(self, key: str | None = None) -> None:
        """Carry out the deferred work ``key`` (all of it when None), once."""

    def require_confirmation(self, what: str) -> None:
        """Refuse a change to real AWS unless the run was confirmed."""
