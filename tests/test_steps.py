"""The step list: every step declared once, in an order that respects what each depends on."""

from __future__ import annotations

import pytest

from pointapp.errors import SpecError
from pointapp.runbook import NOTEBOOKS
from pointapp.steps import STEP_NAMES, STEPS, StepInfo, parse_steps, select


def test_the_eleven_steps_in_dependency_order() -> None:
    assert sorted(STEP_NAMES) == sorted(["network", "domain", "endpoints", "registry", "service", "delivery", "database", "cache",
                                         "bastion", "mail", "frontend"])
    seen: set[str] = set()
    for step in STEPS:
        assert set(step.depends_on) <= seen, f"{step.name} comes before what it depends on"
        seen.add(step.name)


def test_every_step_has_its_module_and_notebook() -> None:
    for step in STEPS:
        assert step.available and (NOTEBOOKS / step.notebook).exists()
        module = step.load()
        for method in ("discover", "plan", "plan_destroy", "apply", "resource_count", "inventory", "outputs"):
            assert callable(getattr(module, method))


def test_selection() -> None:
    assert parse_steps("network, cache") == ["network", "cache"]
    chosen, skipped = select("cache,network")
    assert [s.name for s in chosen] == ["network", "cache"] and skipped == []
    with pytest.raises(SpecError, match="--only: unknown step 'netwrk'; allowed: network, domain, endpoints"):
        parse_steps("netwrk")


def test_a_declared_step_without_code_is_refused_by_name() -> None:
    future = StepInfo("future", "not written yet", (), "99_future.ipynb", None)
    with pytest.raises(SpecError, match="step 'future' is not available in this version"):
        future.load()
