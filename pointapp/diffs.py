"""What an update changes, in words a person reads: each field that differs, with its value now and after.

One renderer for every plan: a kind's ``differences`` says what to set and, through :func:`changed`, what each
setting is now; :func:`describe` turns them into ``container.environment.DB_HOST: (none) -> db.example``,
``retention_days: 90 -> 30``, separated by ``; ``. Nested settings (a container definition, a policy) are walked down to the fields
that differ; long values are shortened in the middle (an ARN keeps its name); the value of a field whose name
says it holds a secret (a password, a token) is never shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

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


def describe(differences: Mapping[str, Any], was: Mapping[str, Any] | None = None) -> str:
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
