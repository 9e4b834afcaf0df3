"""``askdoc eval`` command wiring (argument parser and entry point)."""

from __future__ import annotations

import argparse
from typing import Any

from askdoc.config import Settings
from askdoc.errors import EvalError


def add_eval_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    sub.add_parser("eval", parents=[common], help="run a Q&A evaluation")


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    raise EvalError("askdoc eval is not available yet")
