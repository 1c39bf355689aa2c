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
        if self.seconds < 60:
            return "under a minute"
        minutes = round(self.seconds / 60)
        return "about a minute" if minutes == 1 else f"about {minutes} minutes"
