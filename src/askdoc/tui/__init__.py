"""The chat UI (Textual). Importing this package is light: Textual loads when the app runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from askdoc.config import Settings


def run_app(settings: Settings, watch: bool = False) -> int:
    """Open the chat app on ``settings`` (``watch``: with the corpus watched) and return its
    exit code."""
    from askdoc.tui.app import create_app

    app = create_app(settings, watch=watch)
    app.run()
    return int(app.return_code or 0)
