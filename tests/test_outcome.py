"""What an apply says: one line per change with its outcome (not the plan again), counts that agree with
the inventory or say why they differ, and waits that end at once on the emulator saying so."""

from __future__ import annotations

import pointapp
from pointapp.schedule import TYPICAL
from pointapp.target import Context
from pointapp.typical import finished


def test_an_apply_says_one_outcome_line_per_change_not_the_plan(ctx: Context) -> None:
    planned = pointapp.plan(ctx, only="network")
    outcome = pointapp.apply(ctx, planned)
    lines = [line.strip() for line in ctx.lines]  # type: ignore[attr-defined]
    assert not {change.line().strip() for change in planned.changes} & set(lines)  # the plan is not repeated
    said = [line for line in lines if line.startswith(("created ", "updated "))]
    assert len(said) == len(outcome.applied) == len(planned.actionable)
    assert "created vpc point-app-prod-vpc" in said
    assert any(line.startswith("created route point-app-prod-rtb-app (0.0.0.0/0 -> point-app-prod-nat-1a")
               for line in said)  # a part says which one it is
    assert max(len(line) for line in said) <= 120


def test_the_counts_say_why_they_exceed_the_inventory(ctx: Context) -> None:
    outcome = pointapp.up(ctx, only="network")
    resources = len(pointapp.inventory(ctx, "network"))
    parts = [change for change in outcome.applied if change.is_part]
    assert parts and len(outcome.applied) == resources + len(parts)
    summary = outcome.summary().splitlines()
    assert summary[0].startswith(f"Created {len(outcome.applied) - 1}, changed 1, deleted 0, unchanged 0.")
    assert summary[1] == (f"{len(outcome.applied)} changes to {resources} resources: {len(parts)} of them to parts "
                          "(route, route-association, security-group-rule, default-security-group), which the inventory "
                          "counts with their resource.")
    assert pointapp.up(ctx, only="network").summary() == f"Created 0, changed 0, deleted 0, unchanged {resources}."


def test_the_outcome_shows_as_a_table_of_outcomes(ctx: Context) -> None:
    outcome = pointapp.up(ctx, only="registry,mail")
    table = outcome.table()
    assert table.headers == ["step", "outcome", "resource", "name", "why"]
    assert ("registry", "created", "ecr-repository", "point-app-prod/api", "") in [tuple(row) for row in table.rows]
    html = outcome._repr_html_()
    assert html.count("<tr>") == len(outcome.applied) + 1 and "Created 3, changed 0" in html


def test_a_wait_that_ends_at_once_on_the_emulator_says_so_and_how_long_on_aws() -> None:
    database = TYPICAL["db-instance-multi-az"]
    line = finished("MySQL instance point-app-prod-mysql to be available: done", 0.2, database, real_aws=False)
    assert line == ("MySQL instance point-app-prod-mysql to be available: done at once on the emulator; on AWS this "
                    f"usually takes {database.spoken}")
    assert finished("done", 0.1, 900, real_aws=False) == "done at once on the emulator; on AWS this usually takes about 15 minutes"
    assert finished("done", 4.2, 900, real_aws=False) == "done after 4s"
    assert finished("done", 0.2, database, real_aws=True) == "done after 0s"
