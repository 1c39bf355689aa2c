"""The parts of one run that are not AWS access: progress lines, the record of changes, deferred work,
and the outputs steps expose to each other. :class:`pointapp.target.Context` composes them."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pointapp.plan import Change

T = TypeVar("T")


def print_progress(message: str) -> None:
    print(message + "\n", end="", flush=True)  # one write per line: steps running side by side do not mix lines


class Progress:
    """Progress lines, labelled by step when steps run side by side; the interrupt flag; the clock waits use."""

    def __init__(self, progress: Callable[[str], None] = print_progress,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.progress = progress
        self.clock = clock  # what waits measure (tests give their own)
        self.sleep = sleep  # how waits pause between attempts
        self.stopping = False  # set on Ctrl-C while steps run in threads: each stops before its next change
        self._local = threading.local()

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

    def as_this_work(self, work: Callable[[], T]) -> Callable[[], T]:
        """``work`` made to run, in another thread, as the calling thread's work: the same step
        (:attr:`work_of_step`) and the same label on its progress lines."""
        step, label = getattr(self._local, "step", None), getattr(self._local, "label", None)

        def run() -> T:
            saved = getattr(self._local, "step", None), getattr(self._local, "label", None)
            self._local.step, self._local.label = step, label
            try:
                return work()
            finally:
                self._local.step, self._local.label = saved

        return run

    @property
    def work_of_step(self) -> str | None:
        """The step whose work the calling thread is doing (None outside ``apply``)."""
        step: str | None = getattr(self._local, "step", None)
        return step


@dataclass
class Record:
    """What the run did: the changes carried out, in order, and those the target could not carry out."""

    done: list[Change] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)


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


class DeferredWork:
    """Work a step leaves for later (a slow resource's wait and what must follow it), by key."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._work: dict[str, _Deferred] = {}
        self._lock = threading.Lock()

    def defer(self, key: str, work: Callable[[], None]) -> None:
        """Leave ``work`` for later: a step that needs it done calls :meth:`finish` there, and the end of
        ``up`` finishes whatever is left."""
        with self._lock:
            self._work[key] = _Deferred(work)

    def finish(self, key: str | None = None) -> None:
        """Carry out the deferred work ``key`` (all of it when None), once, whichever thread asks first."""
        with self._lock:
            chosen = [(k, d) for k, d in self._work.items() if key is None or k == key]
        for name, deferred in chosen:
            if not deferred.done:
                self._say(f"needs {name} first")
            deferred.run()
            with self._lock:
                if self._work.get(name) is deferred:
                    del self._work[name]


#: How the outputs of a step not known yet are found: the engine discovers the step (given by name).
Discoverer = Callable[[str], dict[str, Any]]


class Outputs:
    """The ids each step exposes to the steps that use it, by step name.

    The engine writes them after each discover and apply (:meth:`remember`, :meth:`forget`); a step that
    reads those of a step not discovered yet in this run has them found by ``discover`` (the engine's),
    once, even when two steps running side by side ask at the same time.
    """

    def __init__(self, discover: Discoverer) -> None:
        self.discover = discover
        self._known: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._step_locks: dict[str, threading.Lock] = {}

    def lock(self, step: str) -> threading.Lock:
        """The lock held while ``step``'s outputs are being discovered: :meth:`of` waits on it, so a step
        discovered side by side with the steps it uses waits for their outputs instead of reading them twice."""
        with self._lock:
            return self._step_locks.setdefault(step, threading.Lock())

    def of(self, step: str) -> dict[str, Any]:
        """What ``step`` exposes, discovered on first use until it changes."""
        with self.lock(step):  # two steps running side by side that use the same step discover it once
            if step not in self._known:
                self._known[step] = self.discover(step)
            return self._known[step]

    def remember(self, step: str, outputs: dict[str, Any]) -> None:
        self._known[step] = outputs

    def forget(self, step: str) -> None:
        self._known.pop(step, None)
