"""HTML text for citations: the visible text of a parsed page, each word on the line of the file
where it is written, and its headings (pure: the caller parses and decodes)."""

from __future__ import annotations

import re
from typing import Any

from askdoc.text import clean_text
from askdoc.types import Heading

_SPACE_RE = re.compile(r"\s+")
_DROP_TAGS = {"script", "style", "noscript", "template", "svg", "iframe", "object", "canvas"}
_PARA_TAGS = {"p", "pre", "blockquote", "table", "ul", "ol", "dl", "section", "article", "aside"}
_PARA_TAGS |= {"header", "footer", "nav", "main", "figure", "form", "fieldset", "hr", "address"}
_LINE_TAGS = {"div", "li", "tr", "dt", "dd", "figcaption", "caption", "details", "summary"}
_LINE_TAGS |= {"option", "legend", "body", "html"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def _collapse(text: str) -> str:
    """Runs of whitespace as one space, or as the newlines they contain."""
    return _SPACE_RE.sub(lambda m: "\n" * m.group().count("\n") or " ", text)


class TextBuilder:
    """Accumulates the text of an HTML file so that every character stays on the line of the
    file where it was written: newlines inside text are kept, each tag pads the text down to its
    own line (``at_line``), and a block break (``brk``) is a newline only when the next block
    starts on a later line, else one space. So a citation's line is the file's line, never
    past its end. Offsets are exact (nothing is rewritten afterwards)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.line = 1
        self.floor = 1
        self.pending = False

    def brk(self) -> None:
        """A block ends: the next text must not run into it."""
        self.pending = True

    def at_line(self, line: int | None) -> None:
        """What comes next was written on ``line`` of the file (or later)."""
        if line:
            self.floor = max(self.floor, line)

    def add(self, text: str, pre: bool = False) -> None:
        text = text if pre else _collapse(text)
        if not text.strip() and not pre:
            self.line_feeds(text.count("\n"))
            if text and not text.count("\n") and not self._ends_blank():
                self.pending = True
            return
        if not text:
            return
        if self.floor > self.line:
            self.line_feeds(self.floor - self.line)
        if self._at_line_start():
            text = text.lstrip(" ")
        elif self.pending and not text[:1].isspace() and not self._ends_blank():
            self._emit(" ")
        elif self._ends_blank():
            text = text.lstrip(" ")
        self.pending = False
        self._emit(text)

    def line_feeds(self, count: int) -> None:
        if count <= 0:
            return
        if self.parts:
            last = self.parts[-1]
            trimmed = last.rstrip(" ")
            self.length -= len(last) - len(trimmed)
            self.parts[-1] = trimmed
        self._emit("\n" * count)
        self.pending = False

    def _at_line_start(self) -> bool:
        return not self.parts or self.parts[-1].endswith("\n")

    def _ends_blank(self) -> bool:
        return not self.parts or self.parts[-1][-1:] in (" ", "\n")

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        self.line += text.count("\n")
        self.floor = max(self.floor, self.line)

    def text(self) -> str:
        return "".join(self.parts).rstrip()


def walk_html(soup: Any, out: TextBuilder, headings: list[Heading]) -> str:
    """Iterative walk (deep nesting cannot overflow the stack) emitting text and headings, in
    the file's order; returns the title (the first <title>, a level-1 heading)."""
    from bs4 import CData, NavigableString, Tag
    from bs4.element import PreformattedString

    stack: list[tuple[Any, bool]] = [(soup, False)]
    opened: list[tuple[int, int]] = []  # (index in out.parts, level) of headings being read
    pre_depth = 0
    title = ""
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString) or isinstance(node, CData):
                out.add(clean_text(str(node)), pre=pre_depth > 0)
            continue
        name = node.name.lower() if isinstance(node, Tag) and node.name else ""
        if name in _DROP_TAGS:
            continue
        if name == "title":
            text = _SPACE_RE.sub(" ", clean_text(node.get_text())).strip()
            if text and not title and not leaving:
                out.at_line(node.sourceline)
                out.add(text)
                headings.append(Heading(out.length - len(text), 1, text))
                out.brk()
                title = text
            continue
        if not leaving and isinstance(node, Tag):
            out.at_line(node.sourceline)
        if name == "br":
            out.brk()
            continue
        if name in _PARA_TAGS or name in _HEADING_TAGS or name in _LINE_TAGS:
            out.brk()
        if name in ("td", "th") and not leaving:
            out.add(" ")
        if name == "pre":
            pre_depth += -1 if leaving else 1
        if name in _HEADING_TAGS and not leaving:
            opened.append((len(out.parts), _HEADING_TAGS[name]))
        elif name in _HEADING_TAGS and opened:
            _close_heading(opened.pop(), out, headings)
        if not leaving:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    return title


def _close_heading(opened: tuple[int, int], out: TextBuilder, headings: list[Heading]) -> None:
    """Record a heading whose text is everything emitted since its tag opened."""
    emitted = "".join(out.parts[opened[0] :])
    title = _SPACE_RE.sub(" ", emitted).strip()
    if title:
        lead = len(emitted) - len(emitted.lstrip())
        headings.append(Heading(out.length - len(emitted) + lead, opened[1], title))
