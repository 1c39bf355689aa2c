"""The notebooks' prose names no value the specification can change: a code cell shows those
(:func:`pointapp.describe`), and the markdown says "shown below"."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import pointapp
from pointapp.runbook import NOTEBOOKS
from pointapp.spec import ANYWHERE_V4, ANYWHERE_V6, Spec

STORED = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _token(value: object) -> str:
    """``value`` standing alone: not part of a longer number, address or name."""
    return rf"(?<![\w./-]){re.escape(str(value))}(?![\w/]|\.\d)"


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        return False
    return "/" in value


def _leaves(document: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(document, Mapping):
        for name, value in document.items():
            yield from _leaves(value, str(name))
    elif isinstance(document, list | tuple):
        for value in document:
            yield from _leaves(value, key)
    else:
        yield key, document


def spec_values(spec: Spec) -> dict[str, str]:
    """A pattern for each value of ``spec`` a reader would take for a fact of the environment, with what it
    is: address ranges, ports, retention periods, sizes and classes, versions. The whole internet
    (0.0.0.0/0, ::/0) is what the words mean, not a setting."""
    patterns: dict[str, str] = {}
    for key, value in _leaves(spec.model_dump()):
        if isinstance(value, str) and _is_cidr(value) and value not in (ANYWHERE_V4, ANYWHERE_V6):
            patterns[_token(value)] = f"the address range {value}"
        elif isinstance(value, int) and not isinstance(value, bool):
            if key == "port" or key.endswith("_port"):
                patterns[_token(value)] = f"the port {value} ({key})"
            elif key.endswith(("_days", "_minutes")):
                unit = key.rsplit("_", 1)[1].rstrip("s")
                patterns[_token(value) + rf"[\s-]*{unit}"] = f"{value} {unit}s ({key})"
            elif key.startswith("keep_"):
                patterns[_token(value) + rf"\s+{key.removeprefix('keep_')}"] = f"{value} ({key})"
            elif key.endswith("_gb"):
                patterns[_token(value) + r"\s*Gi?B"] = f"{value} GB ({key})"
        elif isinstance(value, str) and key.endswith(("_class", "_type", "engine_version", "deployment_config")):
            patterns[_token(value)] = f"{value} ({key})"
    for group in spec.network.security_groups:
        for rule in spec.inbound_rules(group):
            patterns[_token(rule.port)] = f"the port {rule.port} (a rule of the {group} security group)"
    return patterns


def _values_of_both_environments() -> dict[str, str]:
    return {**spec_values(pointapp.load_spec("prod")), **spec_values(pointapp.load_spec("staging"))}


def _markdown(path: Path) -> Iterator[tuple[str, str]]:
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] == "markdown":
            yield cell.get("id", str(index)), "".join(cell["source"])


@pytest.mark.parametrize("path", STORED, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_markdown_names_no_value_of_the_spec(path: Path) -> None:
    patterns = _values_of_both_environments()
    found = [f"cell {cell}: {what}" for cell, text in _markdown(path)
             for pattern, what in patterns.items() if re.search(pattern, text)]
    assert not found, f"{path.name} writes in its prose what the spec sets (show it from the spec): {found}"


def test_the_check_sees_the_values_it_looks_for() -> None:
    """Prose that names values of the default spec is caught; the same words without them are not."""
    patterns = _values_of_both_environments()
    spec = pointapp.load_spec("prod")
    caught = (f"The VPC is `{spec.network.vpc_cidr}`, kept {spec.network.flow_logs_retention_days} days, the test "
              f"listener on port {spec.service.test_listener_port}, a {spec.database.instance_class} instance, "
              f"MySQL {spec.database.engine_version}, the last {spec.registry.keep_images} images.")
    hits = {what for pattern, what in patterns.items() if re.search(pattern, caught)}
    assert len(hits) == 6, hits
    fine = ("The VPC's address range is shown below; flow logs are kept for the days shown below; the whole "
            "internet (`0.0.0.0/0`, `::/0`); Step 7; IMDSv2; 20_release.ipynb; 13306.")
    assert not [what for pattern, what in patterns.items() if re.search(pattern, fine)]


def test_describe_shows_the_values_the_prose_refers_to() -> None:
    spec = pointapp.load_spec("staging", {"network": {"flow_logs_retention_days": 30},
                                          "service": {"test_listener_port": 8443}})
    rows = {row[2]: row[1] for row in pointapp.describe(spec, "network").rows}
    assert rows["network.vpc_cidr"] == f"{spec.network.vpc_cidr} (65,536 addresses)"
    assert rows["network.flow_logs_retention_days"] == "kept 30 days"
    service = {row[2]: row[1] for row in pointapp.describe(spec, "service").rows}
    assert service["service.test_listener_port"] == "8443"
    assert service["service.log_retention_days"] == f"{spec.service.log_retention_days} days"
    database = {row[2]: row[1] for row in pointapp.describe(spec, "database").rows}
    assert database["database.multi_az"] == "off" and "3306/tcp" in database["network.security_groups.db"]
    for step in pointapp.STEP_NAMES:
        assert len(pointapp.describe(spec, step)) >= 2, step
    with pytest.raises(pointapp.SpecError, match="unknown step"):
        pointapp.describe(spec, "nonesuch")
