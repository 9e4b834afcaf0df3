"""The command palette's askdoc commands (ctrl+p), next to Textual's own (theme, quit, …)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Rebuild index", "Update the index from the corpus (ctrl+r)", "rebuild"),
    ("Full rebuild", "Re-embed every document from scratch", "rebuild(True)"),
    ("Watch corpus", "Turn on / off: the index follows changes to the corpus (f5)", "toggle_watch"),
    ("Export transcript", "Write the chat to a Markdown file (ctrl+s)", "export"),
    ("Clear chat", "Remove every question and answer from the screen (ctrl+l)", "clear"),
    ("Toggle retrieval scores", "Show or hide the score of each source (ctrl+t)", "toggle_scores"),
    (
        "Toggle generated answers",
        "Also ask the language model of [llm] and check its sentences (ctrl+g)",
        "toggle_generate",
    ),
    ("Stop generating", "Stop the language model writing (ctrl+b)", "stop_generating"),
    ("Help", "Every key of the app (f1)", "help"),
    ("Index status", "Re-read the index facts and corpus changes", "refresh_status"),
)
"""(title, help, app action) of every askdoc command."""


class AskdocCommands(Provider):
    """Matches the askdoc commands against what is typed in the palette."""

    def _runner(self, action: str) -> Callable[[], Awaitable[None]]:
        app = self.app

        async def run() -> None:
            await app.run_action(action)

        return run

    async def discover(self) -> Hits:
        for title, help_text, action in COMMANDS:
            yield DiscoveryHit(title, self._runner(action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    self._runner(action),
                    text=title,
                    help=help_text,
                )
