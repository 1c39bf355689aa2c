"""`make scan`'s verdict (scripts/scan.py) on a small recorded Prowler output; no Prowler runs here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "prowler-ocsf-sample.json"  # nine findings of a real run, trimmed
OWNER = "point-app-prod"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scan", ROOT / "scripts" / "scan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scan"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


scan = _load()


def _verdict(*choices: object) -> object:
    import json

    failures, passed = scan.read_findings(json.loads(SAMPLE.read_text()))
    return scan.classify(failures, OWNER, list(choices), scan.load_allowlist(), passed)


def _checks(failures: list[object]) -> set[str]:
    return {f.check for f in failures}  # type: ignore[attr-defined]


def test_failures_are_read_with_their_fsbp_controls_and_the_passes_counted() -> None:
    import json

    failures, passed = scan.read_findings(json.loads(SAMPLE.read_text()))
    assert passed == 1 and len(failures) == 8
    transport = next(f for f in failures if f.check == "rds_instance_transport_encrypted")
    assert transport.severity == "high" and transport.controls == ("RDS.38", "RDS.39")
    assert transport.name == "point-app-prod-mysql"
    bastion = next(f for f in failures if f.check == "ec2_instance_public_ip")
    assert bastion.tags["pointapp:environment"] == OWNER  # known by its ownership tag alone: its name is its id


def test_high_and_undocumented_medium_on_pointapps_resources_fail_the_scan() -> None:
    verdict = _verdict()
    assert not verdict.ok
    assert _checks(verdict.blocking) == {
        "rds_instance_transport_encrypted", "iam_role_cross_service_confused_deputy_prevention",  # High
        "elbv2_waf_acl_attached", "s3_bucket_no_mfa_delete", "ec2_instance_public_ip"}  # Medium, no choice
    assert _checks(verdict.minor) == {"rds_instance_enhanced_monitoring_enabled"}  # Low: listed only
    assert _checks(verdict.outside) == {"ec2_ebs_default_encryption"}  # account-level: not pointapp's
    (artifact,) = verdict.artifacts  # the Critical certificate "expiry": the emulator has no certificates
    assert artifact[0].severity == "critical" and "DescribeCertificates" in artifact[1].reason
    assert verdict.counts() == {"critical": 1, "high": 2, "medium": 3, "low": 1, "informational": 0}


def test_a_documented_choice_accepts_a_medium_by_its_control_or_check_but_never_a_high() -> None:
    waf = scan.Chosen("ELB.16", "service.waf", "staging takes no internet traffic")
    mfa = scan.Chosen("S3.20", "delivery.mfa_delete", "needs the root user's MFA device")
    tls = scan.Chosen("RDS.38", "database.require_tls", "cheaper")  # a High: a choice does not excuse it
    by_check = scan.Chosen("ec2_instance_public_ip", "bastion.public", "operators connect over SSH")
    verdict = _verdict(waf, mfa, tls, by_check)
    assert {(f.check, c.setting) for f, c in verdict.chosen} == {
        ("elbv2_waf_acl_attached", "service.waf"), ("s3_bucket_no_mfa_delete", "delivery.mfa_delete"),
        ("ec2_instance_public_ip", "bastion.public")}
    assert _checks(verdict.blocking) == {"rds_instance_transport_encrypted",
                                         "iam_role_cross_service_confused_deputy_prevention"}


def test_the_report_lists_every_kind_of_failure_with_the_artifacts_reasons() -> None:
    report = _verdict().report()
    assert "failed on pointapp's resources: 1 critical, 2 high, 3 medium, 1 low, 0 informational" in report
    assert "why: moto does not implement RDS DescribeCertificates" in report
    assert "ec2_ebs_default_encryption: 1 resource(s)" in report  # the others, by check
    assert "[RDS.38, RDS.39]" in report
    assert report.endswith("FAIL: 5 failure(s) on pointapp's resources")


def test_every_allowlist_entry_gives_its_reason(tmp_path: Path) -> None:
    assert all(a.reason.strip() and a.check for a in scan.load_allowlist())
    bad = tmp_path / "allowlist.toml"
    bad.write_text('[[artifact]]\ncheck = "s3_bucket_object_lock"\nreason = " "\n')
    with pytest.raises(ValueError, match="s3_bucket_object_lock gives no reason"):
        scan.load_allowlist(bad)


def test_the_verdict_of_a_recorded_run_uses_the_prod_specs_owner_and_exits_1_on_failures(
        capsys: pytest.CaptureFixture[str]) -> None:
    owner, choices = scan.environment_choices()
    assert owner == OWNER and all(c.control and c.reason for c in choices)
    assert scan.main(["--from", str(SAMPLE)]) == 1
    assert "FAIL: " in capsys.readouterr().out


def test_make_scan_runs_the_pinned_prowler_in_its_own_environment_and_ci_runs_it_after_the_tests() -> None:
    commands = subprocess.run(["make", "-n", "scan", "PROWLER_STAMP=/nonexistent/.installed", f"VENV={sys.prefix}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "pip install --quiet --disable-pip-version-check 'prowler==5.46.0'" in commands
    assert "scripts/scan.py --prowler" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("make test || status=$?") < ci.index("make scan || status=$?")


def test_an_artifact_naming_an_audit_check_counts_only_when_that_check_passed_and_audit_findings_fail() -> None:
    import json

    failures, _ = scan.read_findings(json.loads(SAMPLE.read_text()))
    hidden = scan.Artifact("elbv2_waf_acl_attached", "the emulator cannot list a web ACL's resources", audit="waf")
    passed = {"checks": [{"check": "waf", "status": "pass", "findings": []}]}
    verdict = scan.classify(failures, OWNER, [], [hidden], 0, passed)
    assert [f.check for f, _ in verdict.artifacts] == ["elbv2_waf_acl_attached"] and not verdict.audit_findings
    failed = {"checks": [{"check": "waf", "status": "FAIL", "findings": [
        {"resource": "point-app-prod-alb", "problem": "no web ACL", "control": "ELB.16"}]}]}
    verdict = scan.classify(failures, OWNER, [], [hidden], 0, failed)
    assert not verdict.artifacts and "elbv2_waf_acl_attached" in _checks(verdict.blocking)
    assert verdict.audit_findings == ["waf: point-app-prod-alb: no web ACL [ELB.16]"] and not verdict.ok
    assert "FAIL: 6 failure(s) on pointapp's resources, 1 audit finding(s)" in verdict.report()


def test_a_choice_that_turns_off_several_controls_answers_for_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from pointapp import baseline

    keys = baseline.Choice("S3.17, cloudwatch_log_group_kms_encryption_enabled", "database.multi_az",
                           "the services' own keys", "a key: 1 USD a month", "the services' keys are rotated by AWS")
    monkeypatch.setitem(baseline.CHOICES, "database.multi_az", keys)
    monkeypatch.setattr(baseline.Choice, "off", lambda self, spec: self is keys)
    _, choices = scan.environment_choices()
    assert [(c.control, c.setting) for c in choices] == [
        ("S3.17", "database.multi_az"), ("cloudwatch_log_group_kms_encryption_enabled", "database.multi_az")]


def test_a_scan_that_cannot_run_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scan.main(["--prowler", str(tmp_path / "prowler"), "--output", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"scan: no Prowler at {tmp_path / 'prowler'} (make scan installs it in .venv/prowler)\n"


def test_an_artifact_naming_an_emulator_gap_counts_only_when_pointapp_declares_it() -> None:
    tls = scan.Artifact("s3_bucket_no_mfa_delete", "left out on the emulator", gap="s3 PolicyConditions")
    failure = scan.Failure("s3_bucket_no_mfa_delete", "medium", "arn:aws:s3:::point-app-prod-artifacts", "", "")
    assert not scan.classify([failure], OWNER, [], [tls]).artifacts
    assert scan.classify([failure], OWNER, [], [tls], gaps={"s3 PolicyConditions"}).artifacts == [(failure, tls)]
    assert scan.emulator_gaps() >= {"codedeploy RunDeployment", "amplify Amplify"}  # pointapp's own list
