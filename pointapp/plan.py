"""Changes, plans and the tables that show them to a person (in a terminal or a notebook).

What an update changes is said in words a person reads, by one renderer for every plan: a kind's
``differences`` says what to set and, through :func:`changed`, what each setting is now;
:func:`describe_changes` turns them into ``container.environment.DB_HOST: (none) -> db.example``,
``retention_days: 90 -> 30``, separated by ``; ``. Nested settings (a container definition, a policy) are
walked down to the fields that differ; long values are shortened in the middle (an ARN keeps its name); the
value of a field whose name says it holds a secret (a password, a token) is never shown.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# --- what an update changes, in words ------------------------------------------------------------
#: Field, tag and variable names whose values are secrets. A value that is an ARN only names where a secret
#: is kept (a task definition's ``secrets``, DB_SECRET_ARN): it is shown.
SECRET_NAME = re.compile(r"password|passwd|token|secret|credential|private.?key|api.?key", re.IGNORECASE)
HIDDEN = "(hidden: a secret)"
NONE = "(none)"
#: The longest value shown whole, and how many fields one change lists before it counts the rest.
LONGEST = 64
FIELDS_SHOWN = 6
#: Between two fields of one change (a value may hold commas); a notebook's table breaks the line there.
SEPARATOR = "; "


class Differences(dict[str, Any]):
    """The settings an update sets (the values to set, what ``Kind.update`` reads), with ``was``: what each
    is now, where the kind read it."""

    def __init__(self, wanted: Mapping[str, Any] | None = None, was: Mapping[str, Any] | None = None) -> None:
        super().__init__(wanted or {})
        self.was = dict(was or {})

    def add(self, key: str, was: Any, wanted: Any) -> None:
        """Set ``key`` to ``wanted``; it is ``was`` now."""
        self[key] = wanted
        self.was[key] = was


def changed(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Differences:
    """The settings of ``wanted`` that differ from ``current`` (both keyed alike), with their values now."""
    keys = [key for key in wanted if current.get(key) != wanted[key]]
    return Differences({key: wanted[key] for key in keys}, {key: current.get(key) for key in keys})


def is_secret(name: str, value: Any) -> bool:
    """Whether ``value``, under the field, tag or variable ``name``, must not be shown."""
    return bool(SECRET_NAME.search(name)) and not (isinstance(value, str) and value.startswith("arn:"))


def shorten(text: str, longest: int = LONGEST) -> str:
    """``text``, or its start and end around ``...`` when longer than ``longest`` (the end of an ARN or a
    path is its name)."""
    if len(text) <= longest:
        return text
    head = min(12, (longest - 3) // 3)
    return text[:head] + "..." + text[-(longest - 3 - head):]


def show(value: Any, name: str = "") -> str:
    """One value as a person reads it: (none), true/false, a list joined by commas, a mapping as compact
    JSON; shortened; hidden when ``name`` says it is a secret."""
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if is_secret(name, value):
        return HIDDEN
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, Sequence) and all(isinstance(item, str | int | float) for item in value):
        text = ", ".join(str(item) for item in value)
    else:
        text = json.dumps(_hide(value, name), sort_keys=True, default=str, separators=(",", ":"))
    return shorten(text)


def _hide(value: Any, name: str) -> Any:
    """``value`` with what sits under secret names replaced (a mapping shown whole)."""
    if isinstance(value, Mapping):
        named = value.get("name")
        if isinstance(named, str) and "value" in value and is_secret(named, value["value"]):
            return {**value, "value": HIDDEN}
        return {k: HIDDEN if is_secret(str(k), v) and not isinstance(v, Mapping | list) else _hide(v, str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(item, name) for item in value]
    return value


def _named(items: Any) -> dict[str, Any] | None:
    """A list of ``{"name": ...}`` entries (environment variables, secrets, settings) keyed by name, or None.
    An entry ``{"name", "value"}`` becomes its value."""
    if not isinstance(items, list) or not all(isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in items):
        return None
    return {i["name"]: i["value"] if set(i) == {"name", "value"} else {k: v for k, v in i.items() if k != "name"}
            for i in items}


def field_changes(was: Any, now: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Each leaf that differs between ``was`` and ``now``, as (dotted path, value now, value after)."""
    if was == now:
        return
    if isinstance(was, str) and isinstance(now, str):  # a JSON document kept as text (a policy): its fields
        was, now = _parsed(was), _parsed(now)
    if was is None or now is None:  # a setting that appears or goes: its fields, against nothing
        empty: Any = [] if isinstance(was if now is None else now, list) else {}
        was, now = (empty, now) if was is None else (was, empty)
    was_named, now_named = _named(was), _named(now)
    if was_named is not None and now_named is not None and (was_named or now_named):
        was, now = was_named, now_named
    if isinstance(was, Mapping) and isinstance(now, Mapping):
        for key in [*now, *(k for k in was if k not in now)]:
            yield from field_changes(was.get(key), now.get(key), f"{path}.{key}" if path else str(key))
    elif (isinstance(was, list) and isinstance(now, list) and len(was) == len(now)
          and any(isinstance(item, Mapping | list) for item in [*was, *now])):
        for index, (old, new) in enumerate(zip(was, now, strict=True)):
            yield from field_changes(old, new, f"{path}[{index}]")
    else:
        yield path, was, now


def _parsed(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


_UNKNOWN = object()


def describe_changes(differences: Mapping[str, Any], was: Mapping[str, Any] | None = None) -> str:
    """The plan's detail of an update: each field that differs as ``field: now -> after`` (``field -> after``
    where what it is now was not read), the first :data:`FIELDS_SHOWN` of them and how many more."""
    was = dict(was if was is not None else getattr(differences, "was", {}))
    said: list[str] = []
    for key, new in differences.items():
        old = was.get(key, _UNKNOWN)
        if old is _UNKNOWN:
            leaves = list(field_changes({}, new, key)) if isinstance(new, Mapping) else [(key, None, new)]
            said += [f"{path} -> {show(after, path.rsplit('.', 1)[-1])}" for path, _, after in leaves]
        else:
            said += [f"{path}: {show(before, _leaf(path))} -> {show(after, _leaf(path))}"
                     for path, before, after in field_changes(old, new, key)]
    if len(said) > FIELDS_SHOWN:
        said = [*said[:FIELDS_SHOWN], f"and {len(said) - FIELDS_SHOWN} more fields"]
    return SEPARATOR.join(said)


def _leaf(path: str) -> str:
    """The last name of a dotted path, which says whether its value is a secret (``...environment.DB_PASSWORD``)."""
    return re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]


# --- changes and plans ----------------------------------------------------------------------

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
