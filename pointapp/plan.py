"""Changes, plans and the tables that show them to a person (in a terminal or a notebook)."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pointapp.diffs import SEPARATOR, shorten

#: ``keep`` is a resource ``down`` leaves on purpose (deletion protection, or a kept resource stands on it).
Action = Literal["create", "update", "delete", "keep"]
_SYMBOL = {"create": "+", "update": "~", "delete": "-", "keep": "="}
_DONE = {"create": "created", "update": "updated", "delete": "deleted", "keep": "kept"}


@dataclass(frozen=True)
class Change:
    """One change to one resource. ``op`` and ``args`` are what the step needs to carry it out."""

    step: str
    action: Action
    kind: str
    key: str
    name: str
    detail: str
    op: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{_SYMBOL[self.action]} {self.kind:<22} {self.name:<44} {self.detail}"

    @property
    def is_part(self) -> bool:
        """A change to a part of a resource (a route of its route table, a rule of its security group), which
        the inventory counts with its resource."""
        resource = self.args.get("desired") or self.args.get("found")
        return bool(getattr(resource, "parent", None))

    def outcome_line(self, outcome: str | None = None) -> str:
        """What was done, in a few words: ``created vpc point-app-prod-vpc`` (``outcome`` says otherwise:
        ``skipped``). A part is named by its resource and what it is: ``created route point-app-prod-rtb-app
        (0.0.0.0/0 -> point-app-prod-nat-1a)``."""
        which = f" ({shorten(self.detail, 48)})" if self.is_part and self.detail else ""
        return f"{outcome or _DONE[self.action]} {self.kind} {self.name}{which}"


#: What ``down`` keeps, by (step, key), with why: a step's ``plan_destroy`` keeps those and says why.
Kept = Mapping[tuple[str, str], str]


def keep(step: str, kind: str, key: str, name: str, resource_id: str, why: str,
         stands_on: Iterable[tuple[str, str]] = (), **args: Any) -> Change:
    """The change that says ``down`` leaves a resource, why, and the (step, key) resources it stands on
    (which are kept too)."""
    return Change(step, "keep", kind, key, name, f"{resource_id} (kept: {why})", "keep",
                  {"id": resource_id, "why": why, "stands_on": tuple(stands_on), **args})


def stood_on(changes: Iterable[Change], kept: Kept | None = None) -> dict[tuple[str, str], str]:
    """``kept`` and what the kept resources among ``changes`` stand on, each with why it is kept."""
    result = dict(kept or {})
    for change in changes:
        if change.action == "keep":
            for ref in change.args.get("stands_on", ()):
                result.setdefault(tuple(ref), f"{change.kind} {change.name} (kept) stands on it")
    return result


class Link(str):
    """A table cell that links to ``href`` (a path relative to the notebook's folder, or a URL): its text in
    a terminal, a Markdown link in :meth:`Table.markdown`, an HTML link in Jupyter."""

    href: str

    def __new__(cls, text: str, href: str) -> Link:
        link = super().__new__(cls, text)
        link.href = href
        return link

    def html(self) -> str:
        return f"<a href='{html.escape(self.href, quote=True)}'>{html.escape(str(self))}</a>"


class Lines(str):
    """A table cell of several lines (the fields of an update): joined by ``; `` in text, one per line in HTML."""

    def __new__(cls, lines: Iterable[str]) -> Lines:
        return super().__new__(cls, SEPARATOR.join(lines))

    def html(self) -> str:
        return "<br>".join(html.escape(line) for line in self.split(SEPARATOR))


def _cell_html(cell: str) -> str:
    return cell.html() if isinstance(cell, Link | Lines) else html.escape(cell)


def _cell_markdown(cell: str) -> str:
    text = cell.replace("|", "\\|")
    return f"[{text}]({cell.href})" if isinstance(cell, Link) else text


class Table:
    """Rows with headers; prints as aligned text, renders as HTML in Jupyter. A :class:`Link` cell stays a
    link in HTML and Markdown."""

    def __init__(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> None:
        self.headers = list(headers)
        self.rows = [[cell if isinstance(cell, Link | Lines) else "" if cell is None else str(cell) for cell in row]
                     for row in rows]
        self.title = title

    def __len__(self) -> int:
        return len(self.rows)

    def markdown(self) -> str:
        """A Markdown table; cells are written as they are (they may hold links)."""
        lines = [f"**{self.title}**", ""] if self.title else []
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "---|" * len(self.headers))
        lines += ["| " + " | ".join(_cell_markdown(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [max([len(h)] + [len(row[i]) for row in self.rows]) for i, h in enumerate(self.headers)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{_cell_html(c)}</td>" for c in row)
                       + "</tr>" for row in self.rows)
        title = f"<caption style='text-align:left'><b>{html.escape(self.title)}</b></caption>" if self.title else ""
        return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(repr=False)
class Plan:
    """The changes of one or more steps, in the order they will be carried out."""

    changes: list[Change]
    steps: list[str]
    destroy: bool = False
    notes: list[str] = field(default_factory=list)
    observed: dict[str, Any] = field(default_factory=dict, repr=False)
    #: With ``dependencies="warn"``: the line saying which step the planned ones need is not ready (else "").
    unready: str = ""

    @property
    def actionable(self) -> list[Change]:
        """The changes the target can carry out (not those it lacks the service for, nor what is kept)."""
        return [change for change in self.changes if not change.args.get("skip") and change.action != "keep"]

    @property
    def kept(self) -> list[Change]:
        """What a destroy leaves on purpose, each with its reason in ``detail``."""
        return [change for change in self.changes if change.action == "keep"]

    @property
    def empty(self) -> bool:
        return not self.actionable

    def counts(self) -> Counter[str]:
        return Counter(change.action for change in self.actionable)

    def for_step(self, step: str) -> list[Change]:
        return [change for change in self.changes if change.step == step]

    def summary(self) -> str:
        kept = len(self.kept)
        keeping = f" {kept} kept on purpose (=), for the reasons given." if kept else ""
        if self.empty:
            skipped = len(self.changes) - kept
            extra = f" ({skipped} change(s) the target cannot do are listed as skipped.)" if skipped else ""
            if self.destroy:
                return "Nothing to delete." + keeping + extra
            return "No changes: the environment matches the spec." + extra
        counts = self.counts()
        skipped = len(self.changes) - len(self.actionable) - kept
        extra = f" {skipped} more the target cannot do (marked skipped)." if skipped else ""
        return (f"Plan: {counts['create']} to create, {counts['update']} to change, {counts['delete']} to delete."
                f"{keeping}{extra}")

    def table(self) -> Table:
        rows = [(c.step, c.action, c.kind, c.name, Lines(c.detail.split(SEPARATOR)) if c.action == "update" else c.detail)
                for c in self.changes]
        return Table(["step", "action", "resource", "name", "detail"], rows, title=self.summary())

    def __str__(self) -> str:
        return "\n".join([c.line() for c in self.changes] + [*self.notes, self.summary()])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p>{html.escape(note)}</p>" for note in self.notes)
        return self.table()._repr_html_() + notes


@dataclass
class Outcome:
    """What an apply or destroy did."""

    applied: list[Change]
    unchanged: int
    warnings: list[str] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)
    remaining: list[Change] | None = None  # after a destroy: what pointapp still owns there, not kept on purpose
    kept: list[Change] = field(default_factory=list)  # after a destroy: what it left on purpose, and why

    def summary(self) -> str:
        counts = Counter(change.action for change in self.applied)
        text = (f"Created {counts['create']}, changed {counts['update']}, deleted {counts['delete']}, "
                f"unchanged {self.unchanged}.")
        if self.skipped:
            text += f" Skipped {len(self.skipped)}, for the reasons given above."
        lines = [*self.warnings, text]
        parts = [change for change in self.applied if change.is_part]
        if parts:  # why the counts exceed the inventory's, which lists resources with their parts inside
            resources = len({(change.step, change.key) for change in self.applied})
            kinds = ", ".join(dict.fromkeys(change.kind for change in parts))
            lines.append(f"{_count(len(self.applied), 'change')} to {_count(resources, 'resource')}: "
                         f"{len(parts)} of them to parts ({kinds}), which the inventory counts with their resource.")
        if self.kept:
            lines.append(f"Kept on purpose ({len(self.kept)}):")
            lines += [f"  {c.kind} {c.name}: {c.args.get('why', c.detail)}" for c in self.kept]
        if self.remaining is not None:
            if self.remaining:
                lines.append(f"Still there ({len(self.remaining)}), for the reasons given above:")
                lines += [f"  {c.kind} {c.name}" for c in self.remaining]
            else:
                rest = " else" if self.kept else ""
                lines.append(f"Final check: nothing{rest} owned by pointapp remains here.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def table(self) -> Table:
        """One row per change: what was done (created, updated, deleted, skipped, kept) to which resource."""
        skipped = {id(change) for change in self.skipped}
        rows = [(change.step, "skipped" if id(change) in skipped else _DONE[change.action], change.kind, change.name,
                 change.args.get("skip") or "") for change in [*self.applied, *self.skipped] if change.action != "keep"]
        rows += [(change.step, "kept", change.kind, change.name, change.args.get("why", change.detail))
                 for change in self.kept]
        return Table(["step", "outcome", "resource", "name", "why"], rows)

    def _repr_html_(self) -> str:
        lines = "".join(f"<p>{html.escape(line)}</p>" for line in self.summary().splitlines())
        return self.table()._repr_html_() + lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
