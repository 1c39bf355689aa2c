"""The README's command table says what the command takes: each option it lists is in that command's --help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pointapp.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
TARGET_OPTIONS = ("--endpoint-url", "--aws", "--profile", "--region", "--ephemeral")


def command_table() -> list[tuple[str, list[str]]]:
    """The README's ``## The command`` block: (command, the options its line names), one per line (``export
    delivery`` and ``export cloudformation`` are both ``export``)."""
    section = ROOT.joinpath("README.md").read_text().split("## The command", 1)[1]
    block = section.split("```", 2)[1]
    rows = []
    for line in block.strip().splitlines():
        usage = line.split("#", 1)[0]
        words = usage.split()
        assert words[0] == "pointapp", line
        rows.append((words[1], re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage)))
    return rows


def help_of(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001 - argparse has no public getter
    return str(sub.choices[command].format_help())


ROWS = command_table()


def test_the_table_lists_every_command() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001
    assert {name for name, _ in ROWS} == set(commands)


@pytest.mark.parametrize(("command", "options"), ROWS, ids=[f"{c} {' '.join(o)}" for c, o in ROWS])
def test_each_listed_option_is_in_the_commands_help(command: str, options: list[str]) -> None:
    shown = help_of(command)
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", shown), f"pointapp {command} --help lacks {option}"


@pytest.mark.parametrize("command", sorted({c for c, _ in ROWS} - {"emulator"}))
def test_every_command_but_the_emulator_takes_the_target_options(command: str) -> None:
    """The sentence under the table: 'All of them but `emulator` (which is a target) take the target options'."""
    readme = " ".join(ROOT.joinpath("README.md").read_text().split())
    assert "All of them but `emulator` (which is a target) take the target options (`--endpoint-url`, `--aws`, " \
           "`--profile`, `--region`, `--ephemeral`)" in readme
    shown = help_of(command)
    for option in TARGET_OPTIONS:
        assert option in shown, f"pointapp {command} --help lacks {option}"


def test_the_aws_behaviour_table_lists_every_rule_of_the_layer() -> None:
    """The README's table of the tests' AWS-behaviour layer names each of its rules once, and no other."""
    from tests.aws_behaviour import RULES

    readme = ROOT.joinpath("README.md").read_text()
    table = readme.split("| rule | what the layer does (as AWS does) | source |", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.MULTILINE)
    assert sorted(listed) == sorted(RULES), f"README lacks {sorted(set(RULES) - set(listed))}, " \
                                            f"lists unknown {sorted(set(listed) - set(RULES))}"
    assert len(listed) == len(set(listed)), "a rule is listed twice"
