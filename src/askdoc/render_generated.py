"""A checked generated answer as terminal text (rich ``Text``, never markup) and as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text

from askdoc.generate import GeneratedAnswer
from askdoc.grounding import SentenceCheck
from askdoc.render import display_path, one_line
from askdoc.types import AnswerSentence, Source

SUPPORTED = "✓"
UNSUPPORTED = "✗"
TITLE = "Generated answer"


def quote_location(support: AnswerSentence, sources: dict[int, Source], corpus: Path) -> str:
    """``corpus/file.txt:L8`` (``:L8-9``, or ``:p3`` for paged documents) of a quote."""
    source = sources.get(support.source)
    if source is None:
        return f"[{support.source}]"
    where = display_path(corpus, source.path)
    if source.page is not None:
        return f"{where}:p{source.page}"
    first, last = support.lines
    return f"{where}:L{first}" + (f"-{last}" if last != first else "")


def summary(generated: GeneratedAnswer) -> str:
    """``2 of 3 sentences supported by the sources`` (or why there is nothing to check)."""
    claims = generated.claims
    if generated.refused and not claims:
        return "the model found no answer in the sources"
    if not claims:
        return "nothing in it to check"
    good = len(claims) - generated.unsupported
    noun = "sentence" if len(claims) == 1 else "sentences"
    return f"{good} of {len(claims)} {noun} supported by the sources"


def speed(generated: GeneratedAnswer) -> str:
    return (
        f"first token {generated.first_token_s:.2f} s · {generated.tokens} tokens · "
        f"{generated.tokens_per_s:.1f} tokens/s"
    )


def generated_text(generated: GeneratedAnswer, corpus: Path, timings: bool = True) -> Text:
    """The model's answer sentence by sentence: ✓ with the quote that supports it, or ✗ with
    what is wrong; then notes (a refusal askdoc disagrees with, a stopped generation)."""
    out = Text()
    if generated.error:
        return out
    out.append(TITLE, style="bold")
    model = f"  {one_line(generated.model)}" if generated.model else ""
    out.append(f"{model} · {summary(generated)}\n", style="dim")
    sources = {s.number: s for s in generated.answer.sources}
    if not generated.checks and generated.text:
        out.append(f"  {one_line(generated.text)}\n")
    for check in generated.checks:
        out.append_text(check_text(check, sources, corpus))
    for note in generated.notes():
        out.append(f"note: {note}\n", style="yellow")
    if timings and generated.tokens:
        out.append(speed(generated) + "\n", style="dim")
    return out


def check_text(check: SentenceCheck, sources: dict[int, Source], corpus: Path) -> Text:
    out = Text("  ")
    if not check.claim:
        out.append(f"  {one_line(check.text)}\n", style="dim")
        return out
    if check.ok:
        out.append(f"{SUPPORTED} ", style="bold green")
        out.append(one_line(check.text) + "\n")
    else:
        out.append(f"{UNSUPPORTED} ", style="bold red")
        out.append(one_line(check.text) + "\n", style="red")
        out.append(f"      {check.verdict}: {'; '.join(check.problems())}\n", style="red")
    support = check.support
    if support is not None and check.supported:
        out.append("      ↳ ", style="dim")
        out.append(f"[{support.source}] ", style="bold cyan")
        out.append(quote_location(support, sources, corpus), style="green")
        out.append(f' "{one_line(support.text)}"\n', style="dim")
    return out


def check_json(check: SentenceCheck, sources: dict[int, Source], corpus: Path) -> dict[str, Any]:
    support = check.support
    quote = None
    if support is not None:
        source = sources.get(support.source)
        quote = {
            "source": support.source,
            "path": display_path(corpus, source.path) if source is not None else None,
            "line": support.line,
            "line_end": support.lines[1],
            "page": source.page if source is not None else None,
            "start": support.start,
            "end": support.end,
            "text": support.text,
            "score": check.score,
        }
    return {
        "text": check.text,
        "start": check.start,
        "end": check.end,
        "verdict": check.verdict,
        "supported": check.supported,
        "support": quote,
        "cited": list(check.cited),
        "missing": list(check.missing),
        "cites_no_source": list(check.no_source),
        "cites_wrong_source": list(check.wrong_source),
        "problems": check.problems(),
    }


def generated_json(generated: GeneratedAnswer, corpus: Path) -> dict[str, Any]:
    """The ``generated`` object of ``askdoc ask --generate --json`` (docs/json.md)."""
    sources = {s.number: s for s in generated.answer.sources}
    return {
        "model": generated.model,
        "text": generated.text,
        "error": generated.error,
        "refused": generated.refused,
        "cancelled": generated.cancelled,
        "answered_anyway": generated.answered_anyway,
        "sentences": [check_json(c, sources, corpus) for c in generated.checks],
        "supported": len(generated.claims) - generated.unsupported,
        "unsupported": generated.unsupported,
        "notes": generated.notes(),
        "first_token_ms": round(generated.first_token_s * 1000, 1),
        "seconds": round(generated.seconds, 3),
        "tokens": generated.tokens,
        "tokens_per_s": round(generated.tokens_per_s, 2),
    }
