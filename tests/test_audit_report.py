"""The audit's report for people and machines: the README's "Security audit" section lists every check with its
controls and every documented choice (pointapp.baseline.CHOICES) with its setting, control, cost, reason and the
environments that make it; ``pointapp audit --format json`` gives the same report as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pointapp import baseline, cli
from pointapp.audit import CHECKS, Report, Result
from pointapp.baseline import CHOICES
from pointapp.spec import ENVIRONMENTS, load_spec

ROOT = Path(__file__).resolve().parents[1]
#: Every FSBP control id of the Security Hub controls reference, with its title (tests/data/fsbp-controls.tsv).
FSBP = dict(line.split("\t", 1) for line in (ROOT / "tests" / "data" / "fsbp-controls.tsv").read_text().splitlines()
            if line and not line.startswith("#"))
#: Security Hub controls outside the FSBP standard (so not in the file above) that a check follows, with their
#: titles (AWS Security Hub User Guide, "Security Hub controls reference").
OTHER = {"ELB.17": "Application and Network Load Balancers with listeners should use recommended security policies"}
#: Control ids Security Hub retired, still named by a check, and why they still are.
RETIRED = {"S3.4": "S3 applies SSE-S3 to every bucket since 2023-01-05 (AWS Prescriptive Guidance, encryption best "
                   "practices for S3), so Security Hub retired S3.4; the artifact bucket still states its encryption"}


def _rows() -> list[list[str]]:
    """The cells of every table row in the README's ``## Security audit`` section (header rows included)."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Security audit\n", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")]


def test_the_check_table_lists_every_check_with_its_controls() -> None:
    listed = {row[0]: row[1] for row in _rows() if len(row) == 3 and row[0] != "check"}
    assert listed == {name: control for name, control, _, _ in CHECKS}


def choice_rows() -> list[list[str]]:
    """The README's choice table as it must be: one row per documented choice (paste ``choice_table()``)."""
    rows = []
    for setting, choice in CHOICES.items():
        made_by = ", ".join(env for env in ENVIRONMENTS if choice.off(load_spec(env=env))) or "none (an option)"
        rows.append([f"`{setting}`", choice.control, made_by, choice.what, choice.cost, choice.reason])
    return rows


def choice_table() -> str:
    header = ["setting", "control", "made by", "what", "cost of meeting it", "reason"]
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, ["---"] * 6, *choice_rows()])


def test_the_choice_table_lists_every_documented_choice_with_its_cost_reason_and_environments() -> None:
    listed = sorted(row for row in _rows() if len(row) == 6 and row[0] != "setting")
    assert listed == sorted(choice_rows()), "the README's choice table should be:\n" + choice_table()


def test_the_json_report_gives_each_check_its_status_and_each_finding_and_choice_its_control(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waf = baseline.Choice("WAF.2", "service.port", "no web ACL", "about 10 USD a month", "staging takes no traffic")
    monkeypatch.setitem(baseline.CHOICES, "service.port", waf)
    chosen = Result("waf", "a web ACL on the load balancer", "ELB.16")
    chosen.examined.append("point-app-staging-alb")
    chosen.choose("point-app-staging-alb", "service.port")
    failed = Result("remote-login", "no SSH or RDP", "EC2.13, EC2.14")
    failed.examined.append("point-app-staging-sg-management")
    failed.flag("point-app-staging-sg-management", "RDP (3389) open", "EC2.14")
    document = json.loads(Report("audit", [chosen, failed]).json())
    assert document["summary"] == "2 checks (2 on built resources): 1 finding, 1 documented choice"
    waf_check, login = document["checks"]
    assert (waf_check["status"], login["status"]) == ("choice", "FAIL")
    assert waf_check["choices"] == [{"resource": "point-app-staging-alb", "control": "WAF.2", "setting": "service.port",
                                     "what": "no web ACL", "cost": "about 10 USD a month",
                                     "reason": "staging takes no traffic"}]
    assert login["findings"] == [{"resource": "point-app-staging-sg-management", "problem": "RDP (3389) open",
                                  "control": "EC2.14"}]
    assert cli.parse_arguments(["audit"]).format == "text"


def test_audit_as_json_keeps_stdout_for_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    # The embedded emulator serves this process's moto state, which the tests' other emulators of this process
    # share (tests/conftest.py, embedded_aws_like): empty it first, as each test using one does.
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    assert cli.main(["audit", "--ephemeral", "--format", "json"]) == 1  # an empty emulator: nothing to audit
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Environment point-app-prod on ") and "nothing to audit" in err


def test_every_control_a_check_or_a_choice_names_is_in_the_security_hub_controls_reference() -> None:
    # A check no FSBP control covers names none (its rule names the Prowler check it follows).
    named = {c.strip() for _, controls, _, _ in CHECKS for c in controls.split(",") if controls}
    assert named - set(FSBP) - set(OTHER) <= set(RETIRED), sorted(named - set(FSBP) - set(OTHER) - set(RETIRED))
    for choice in CHOICES.values():  # FSBP ids, or the Prowler check id of a check no FSBP control has
        for control in choice.controls:
            assert control in FSBP or re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", control), control


def test_a_choice_is_made_by_a_number_below_its_threshold_or_always() -> None:
    retention = CHOICES["service.log_retention_days"]
    assert retention.off(load_spec("prod"))  # 30 days
    assert not retention.off(load_spec("prod", {"service": {"log_retention_days": 365}}))
    assert all(CHOICES[name].off(load_spec(env)) for name in ("s3_mfa_delete", "bastion_backup") for env in ENVIRONMENTS)


def test_a_malformed_choice_in_the_file_names_its_entry(tmp_path: Path) -> None:
    from pointapp.baseline import load_choices

    path = tmp_path / "baseline.yaml"
    path.write_text("service.waf:\n  control: ELB.16\n  what: no WAF\n  cost: none\n  reason: tests\n  price: 5\n")
    with pytest.raises(ValueError, match=r"baseline.yaml: the choice 'service.waf' is malformed"):
        load_choices(path)
    path.write_text("service.waf:\n  control: ELB.16\n  what: no WAF\n  cost: none\n  reason: tests\n")
    assert load_choices(path)["service.waf"].control == "ELB.16"
