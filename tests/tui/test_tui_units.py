"""Pure helpers of the chat UI: history, Markdown export, and the Content built from documents."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from askdoc import render as render_module
from askdoc.tui import texts
from askdoc.tui.app import AskdocApp
from askdoc.tui.commands import COMMANDS
from askdoc.tui.screens import KEYS
from askdoc.tui.transcript import Exchange, History, export_name, sentence_ref, to_markdown
from askdoc.types import Answer, AnswerSentence, Document, Source

TEXT = "Intro line.\nThe pact was signed on June 19. It was a surprise.\nLast line.\n"
START = TEXT.index("The pact")
SENTENCE = "The pact was signed on June 19."


def source(page: int | None = None, text: str = TEXT) -> Source:
    return Source(
        number=1,
        path="news/pact.txt",
        text=text[START:],
        start=START,
        end=len(text),
        line_start=2,
        line_end=3,
        page=page,
        heading="",
        score=0.5,
        highlight=(START, START + len(SENTENCE)),
    )


def answer(found: bool = True, searched: str = "When was the pact signed?") -> Answer:
    sentences = (AnswerSentence(SENTENCE, 1, START, START + len(SENTENCE), 2, 0.9),)
    return Answer(
        question="When was the pact signed?",
        searched=searched,
        found=found,
        confidence=0.9 if found else 0.1,
        sentences=sentences if found else (),
        sources=(source(),),
        message="" if found else "Not found in the documents.",
    )


def test_history_walks_back_and_forth_and_keeps_the_draft() -> None:
    history = History()
    assert history.up("draft") is None and history.down() is None
    for question in ("one", "two", "two"):
        history.add(question)
    assert history.items == ["one", "two"]  # repeated questions are kept once
    assert history.up("draft") == "two"
    assert history.up("two") == "one"
    assert history.up("one") is None
    assert history.down() == "two"
    assert history.down() == "draft"
    assert history.down() is None


def test_history_is_bounded() -> None:
    history = History(limit=3)
    for n in range(10):
        history.add(str(n))
    assert history.items == ["7", "8", "9"]


def test_export_name_is_a_timestamped_markdown_file() -> None:
    assert re.fullmatch(r"askdoc-transcript-\d{8}-\d{6}\.md", export_name())


@pytest.mark.parametrize(
    ("page", "expected"), [(None, "corpus/news/pact.txt:L2"), (4, "corpus/news/pact.txt:p4")]
)
def test_sentence_ref_is_path_line_or_page(page: int | None, expected: str) -> None:
    sentence = answer().sentences[0]
    assert sentence_ref(sentence, source(page), Path("corpus")) == expected


def test_markdown_transcript_cites_path_and_line() -> None:
    entries = [
        Exchange("When was the pact signed?", answer()),
        Exchange("and who?", answer(searched="When was the pact signed? and who?")),
        Exchange("nothing", None, "please ask a question"),
        Exchange("Unrelated?", answer(found=False)),
    ]
    markdown = to_markdown(entries, Path("corpus"), now=0)
    assert "## Q: When was the pact signed?" in markdown
    assert f"- {SENTENCE} [1] (corpus/news/pact.txt:L2)" in markdown
    assert "[1] corpus/news/pact.txt:L2-3 · score 0.50" in markdown
    assert "> The pact was signed on June 19. It was a surprise." in markdown
    assert "*↳ read as: When was the pact signed? and who?*" in markdown
    assert "*Not answered: please ask a question*" in markdown
    assert "### Closest passages (none of them answers it)" in markdown
    without = to_markdown(entries, Path("corpus"), now=0, show_scores=False)
    assert "score" not in without


@pytest.mark.parametrize(
    "hostile",
    ["[@click=app.quit]X", "[ @click=app.screenshot('x.svg','/tmp')]X", "[/", "[b]bold?[/b]"],
)
def test_document_text_is_never_markup(hostile: str) -> None:
    content = texts.plain(hostile)
    assert content.plain == hostile and not content.spans
    assert texts.question_content(hostile).plain == f"❯ {hostile}"


def test_control_characters_are_stripped() -> None:
    assert texts.plain("a\x1b[31mred\x1b]8;;http://x\x07b\u202ec").plain == "a[31mred]8;;http://xbc"


def test_passage_highlights_the_supporting_sentence() -> None:
    content = texts.passage_content(source())
    lit = [content.plain[span.start : span.end] for span in content.spans]
    assert lit == [SENTENCE]


def test_source_title_names_the_sentence_line_and_optional_score() -> None:
    assert texts.source_title(source(), Path("corpus"), True).plain == (
        "[1] corpus/news/pact.txt:L2  score 0.50"
    )
    expanded = texts.source_title(source(), Path("corpus"), True, expanded=True).plain
    assert expanded == "[1] corpus/news/pact.txt:L2  passage L2-3  score 0.50"
    assert "score" not in texts.source_title(source(), Path("corpus"), False).plain


def test_collapsed_source_is_the_sentence_in_context() -> None:
    content = texts.excerpt_content(source())
    lit = [
        content.plain[span.start : span.end]
        for span in content.spans
        if "reverse" in str(span.style)
    ]
    assert lit == [SENTENCE]
    assert "\n" not in content.plain


def render(table: object) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_document_parts_split_around_the_cited_lines() -> None:
    document = Document("news/pact.txt", TEXT, "txt")
    before, cited, after, note = texts.document_parts(document, source())
    assert render(before).split() == ["1", "Intro", "line."]
    assert "2 The pact was signed on June 19." in render(cited)
    assert render(after).split() == ["3", "Last", "line."]
    assert note == ""


def test_document_parts_window_a_long_document() -> None:
    text = "".join(f"line {n}\n" for n in range(1, 10_001))
    start = text.index("line 6000\n")
    long_source = Source(1, "big.txt", "line 6000", start, start + 9, 6000, 6000, None, "", 1.0)
    _, cited, after, note = texts.document_parts(Document("big.txt", text, "txt"), long_source)
    assert "6000 line 6000" in render(cited)
    assert note.startswith("long document:") and "lines above" in note
    assert "lines below" in note


def test_document_parts_mark_pages() -> None:
    text = "page one\npage two\n"
    document = Document("a.pdf", text, "pdf", page_starts=(0, 9))
    paged = Source(1, "a.pdf", "page two", 9, 17, 2, 2, 2, "", 1.0)
    _, cited, _, _ = texts.document_parts(document, paged)
    assert "── page 2 ──" in render(cited)


def test_every_palette_command_and_key_has_an_action() -> None:
    for _, _, action in COMMANDS:
        assert hasattr(AskdocApp, "action_" + action.split("(")[0])
    bound = {b.key for b in AskdocApp.BINDINGS}  # type: ignore[union-attr]
    for key in ("ctrl+o", "ctrl+r", "ctrl+s", "ctrl+l", "ctrl+t", "f1", "ctrl+q"):
        assert key in bound
        assert any(key in k for _, k, _ in KEYS)


def test_every_answer_sentence_of_a_source_is_highlighted() -> None:
    second = TEXT.index("It was a surprise.")
    spans = ((START, START + len(SENTENCE)), (second, second + len("It was a surprise.")))
    both = replace(source(), highlights=spans)
    content = texts.passage_content(both)
    lit = [content.plain[span.start : span.end] for span in content.spans]
    assert lit == [SENTENCE, "It was a surprise."]
    document = Document("news/pact.txt", TEXT, "txt")
    title = texts.viewer_title(both, document, Path("corpus")).plain
    assert title.endswith("· cited sentences on line 2")
    assert texts.cited_span(both) == (START, second + len("It was a surprise."))


def test_the_cli_and_the_chat_show_a_source_by_the_same_rules() -> None:
    """A source's title and its highlighted passage are written once (render): the CLI's rich
    Text and the chat's Content hold the same text and highlight the same sentence, also when a
    control character before it is stripped (offsets are cut before cleaning)."""
    text = TEXT.replace("19. It", "19.\x07 It")
    second = text.index("It was")
    cited = replace(
        source(text=text),
        end=len(text),
        heading="Pact\x1b[31m news",
        highlights=((second, second + len("It was a surprise.")),),
    )
    cli = render_module.styled(
        render_module.title_pieces(cited, Path("corpus"), True, passage=True, heading=True)
    )
    chat = texts.source_title(cited, Path("corpus"), True, expanded=True)
    assert (
        chat.plain
        == cli.plain
        == "[1] corpus/news/pact.txt:L2  passage L2-3  score 0.50  § Pact[31m news"
    )
    rich_passage = render_module.passage_text(cited)
    content = texts.passage_content(cited)
    assert content.plain == rich_passage.plain == text[START:].replace("\x07", "")
    lit = [content.plain[span.start : span.end] for span in content.spans]
    assert lit == [rich_passage.plain[s.start : s.end] for s in rich_passage.spans]
    assert lit == ["It was a surprise."]
