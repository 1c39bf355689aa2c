"""How long things usually take on AWS: one figure that a wait prints and the schedule adds up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Typical:
    """How long something usually takes on AWS (a resource becoming available, or gone), what that covers
    and where the figure comes from. A wait prints it (:attr:`spoken`) and the schedule of a stand-up adds
    it up (:mod:`pointapp.schedule`): one figure for both. ``name`` is its entry in ``schedule.TYPICAL``."""

    name: str
    seconds: int
    what: str
    source: str

    @property
    def spoken(self) -> str:
        """The figure as a wait says it: "under a minute", "about a minute", "about 10 minutes"."""
        return spoken(self.seconds)


def spoken(seconds: float) -> str:
    """A typical duration in words: "under a minute", "about a minute", "about 10 minutes"."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    return "about a minute" if minutes == 1 else f"about {minutes} minutes"


def finished(what: str, seconds: float, usually: Typical | float | None, real_aws: bool) -> str:
    """The line a finished wait for ``what`` says: how long it took; on an emulator, where it ends at once, that
    it did and how long it usually takes on AWS (``usually``: the figure, or seconds), not "after 0s"."""
    if real_aws or seconds >= 1:
        return f"{what} after {seconds:.0f}s"
    typical = usually.seconds if isinstance(usually, Typical) else usually
    on_aws = f"; on AWS this usually takes {spoken(typical)}" if typical else ""
    return f"{what} at once on the emulator{on_aws}"
