"""The command line's one dispatch table: every command the parser accepts runs through it."""

from __future__ import annotations

import argparse

import pytest

from askdoc.cli.parser import build_parser, command_table


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_every_command_has_exactly_one_handler() -> None:
    assert subcommands(build_parser()) == set(command_table())


def test_an_unknown_command_is_a_usage_error_not_an_eval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["evaluate", "qa.jsonl"])
    assert exc.value.code == 2
    assert "invalid choice: 'evaluate'" in capsys.readouterr().err
