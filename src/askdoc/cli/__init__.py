"""The ``askdoc`` command: ``parser`` reads the arguments and runs one command from its table,
``commands`` holds the commands, ``watch`` the ``index --watch`` loop. ``main`` is the console
script's entry point."""

from __future__ import annotations

from askdoc.cli.parser import main

__all__ = ["main"]
