"""The checklist the start page shows: each step's state, what it waits for, a link to its notebook."""

from __future__ import annotations

import pointapp
from pointapp.steps import STEPS
from pointapp.target import Context


def _rows(ctx: Context) -> dict[str, dict[str, str]]:
    table = pointapp.status(ctx)
    return {row[0]: dict(zip(table.headers, row, strict=True)) for row in table.rows}


def test_an_empty_target_lists_every_step_not_built_with_what_it_waits_for(ctx: Context) -> None:
    table = pointapp.status(ctx)
    assert [row[0] for row in table.rows] == [step.name for step in STEPS]
    rows = _rows(ctx)
    assert rows["network"]["status"] == "not built" and rows["network"]["waits for"] == ""
    assert rows["service"]["waits for"] == "network, endpoints, registry, database, cache, mail"
    assert rows["frontend"]["status"] == "nothing to build"  # no repository configured
    assert rows["frontend"]["waits for"] == "service"


def test_states_follow_what_exists(ctx: Context) -> None:
    pointapp.up(ctx, only="network,registry")
    rows = _rows(ctx)
    assert (rows["network"]["status"], rows["registry"]["status"]) == ("done", "done")
    assert rows["endpoints"] == {**rows["endpoints"], "status": "not built", "waits for": ""}
    assert rows["service"]["waits for"] == "endpoints, database, cache, mail"
    assert rows["delivery"]["waits for"] == "service"

    ctx.client("logs").delete_log_group(logGroupName="/pointapp/point-app-prod/vpc-flow-logs")
    assert _rows(ctx)["network"]["status"] == "partly built"  # only creates to do
    ec2 = ctx.client("ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag:Name", "Values": ["point-app-prod-sg-db"]}])
    db = groups["SecurityGroups"][0]
    ec2.authorize_security_group_ingress(GroupId=db["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    drifted = _rows(ctx)
    assert drifted["network"]["status"] == "drifted"  # a rule to delete too
    assert "network" in drifted["endpoints"]["waits for"]

    ecr = ctx.client("ecr")
    ecr.delete_repository(repositoryName="point-app-prod/api", force=True)
    assert _rows(ctx)["registry"]["status"] == "not built"


def test_the_notebook_is_a_link_in_html_and_markdown_and_its_name_in_text(ctx: Context) -> None:
    table = pointapp.status(ctx)
    html = table._repr_html_()
    for step in STEPS:
        assert f"<a href='{step.notebook}'>{step.notebook}</a>" in html
        assert f"[{step.notebook}]({step.notebook})" in table.markdown()
    text = str(table)
    assert "01_network.ipynb" in text and "](" not in text and "<a " not in text


def test_the_start_page_shows_the_checklist_first() -> None:
    """The first cell after the parameters connects and shows the checklist; no static table of steps."""
    import json

    from pointapp.runbook import NOTEBOOKS

    cells = json.loads((NOTEBOOKS / "00_start_here.ipynb").read_text())["cells"]
    tagged = [i for i, cell in enumerate(cells) if "parameters" in cell["metadata"].get("tags", [])]
    first = cells[tagged[0] + 1]
    source = "".join(first["source"])
    assert first["cell_type"] == "code" and "pointapp.connect(" in source
    assert source.rstrip().endswith("pointapp.status(ctx)")
    assert not any("steps_table" in "".join(cell["source"]) for cell in cells)
