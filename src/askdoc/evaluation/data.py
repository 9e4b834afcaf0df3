"""Evaluation data: Q&A files (JSONL or YAML), BEIR benchmark folders, and the cache folders
where another corpus or a BEIR corpus is indexed. Nothing here prints or touches an index."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import yaml

from askdoc.errors import EvalError
from askdoc.types import Source

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total)."""

KNOWN_FIELDS = frozenset({"id", "question", "answers", "sources", "unanswerable"})
_GOLD = re.compile(r"(?P<path>.+?)(?::L?(?P<line>0|[1-9][0-9]*)|#p(?P<page>0|[1-9][0-9]*))?", re.A)


@dataclass(frozen=True)
class GoldSource:
    """A source that should be found: a document path, optionally a line (``:8``) or page
    (``#p3``). The path matches a document equal to it or ending with "/" + it."""

    path: str
    line: int | None = None
    page: int | None = None

    @classmethod
    def parse(cls, text: str) -> GoldSource:
        """``path``, ``path:8`` (or ``path:L8``) or ``path#p3``; ValueError when malformed."""
        match = _GOLD.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"source {text!r} is not path, path:LINE or path#pPAGE")
        line, page = match["line"], match["page"]
        if "0" in (line, page):
            raise ValueError(f"source {text!r}: lines and pages start at 1")
        return cls(
            match["path"].removeprefix("./"),
            int(line) if line else None,
            int(page) if page else None,
        )

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return self.path if self.page is None else f"{self.path}#p{self.page}"

    def names(self, document: str) -> bool:
        return self.path == document or self.path.endswith("/" + document)

    def matches(self, source: Source) -> bool:
        """Same document, and the line (or page) inside the passage when one is given."""
        if not self.names(source.path):
            return False
        if self.line is not None and not source.line_start <= self.line <= source.line_end:
            return False
        return self.page is None or source.page == self.page


@dataclass(frozen=True)
class QARecord:
    """One question to evaluate. ``grades`` holds BEIR graded relevance (doc id, grade)."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    sources: tuple[GoldSource, ...] = ()
    unanswerable: bool = False
    line: int = 0
    grades: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Dataset:
    """Records to run; ``problems`` are skipped or doubtful records, with their line numbers.
    ``doc_ids`` maps a BEIR document file (relative to its corpus) back to its ``_id``."""

    name: str
    kind: str
    records: tuple[QARecord, ...]
    problems: tuple[str, ...] = ()
    doc_ids: dict[str, str] = field(default_factory=dict, compare=False)


def _strings(raw: object, name: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(x, str) and x.strip() for x in items):
        raise ValueError(f"{name!r} must be a list of non-empty strings")
    return tuple(items)


def parse_record(raw: object, line: int) -> QARecord:
    """A QARecord from one parsed record; ValueError says what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError("not an object with a 'question'")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' is missing or empty")
    rid = raw.get("id", str(line))
    if not isinstance(rid, str | int) or isinstance(rid, bool) or not str(rid).strip():
        raise ValueError("'id' must be a non-empty string")
    answers = _strings(raw.get("answers", []), "answers")
    sources = tuple(GoldSource.parse(s) for s in _strings(raw.get("sources", []), "sources"))
    unanswerable = raw.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    if unanswerable and (answers or sources):
        raise ValueError("an unanswerable question cannot have answers or sources")
    return QARecord(str(rid), question.strip(), answers, sources, unanswerable, line)


def _yaml_items(text: str, where: str) -> list[tuple[int, object]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == "questions"), None)
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise EvalError(f"{where}: expected a list of questions or {{questions: [...]}}")
        return [(item.start_mark.line + 1, loader.construct_document(item)) for item in node.value]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise EvalError(f"{where}: not valid YAML{at}") from None
    finally:
        loader.dispose()


def _jsonl_items(text: str, where: str, problems: list[str]) -> list[tuple[int, object]]:
    items: list[tuple[int, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{where}:{number}: not valid JSON ({exc.msg})")
    return items


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read it ({exc})") from None


def load_qa(path: Path) -> Dataset:
    """Load a Q&A file: JSONL (one object a line) or YAML/JSON (a list, or {questions: [...]}).

    Malformed records are skipped and reported with their line numbers; the rest are kept."""
    text, where = _read_text(path), str(path)
    problems: list[str] = []
    suffix = path.suffix.lower()
    jsonl = suffix in (".jsonl", ".ndjson")
    if suffix not in (".jsonl", ".ndjson", ".yaml", ".yml"):
        jsonl = text.lstrip().startswith("{") and not _is_json(text)
    items = _jsonl_items(text, where, problems) if jsonl else _yaml_items(text, where)
    records: list[QARecord] = []
    seen: set[str] = set()
    for line, raw in items:
        try:
            record = parse_record(raw, line)
            if record.id in seen:
                raise ValueError(f"duplicate id {record.id!r}")
        except ValueError as exc:
            problems.append(f"{where}:{line}: {exc}; skipped")
            continue
        unknown = sorted(set(raw) - KNOWN_FIELDS) if isinstance(raw, dict) else []
        if unknown:
            problems.append(
                f"{where}:{line}: unknown fields ignored: {', '.join(map(str, unknown))}"
            )
        seen.add(record.id)
        records.append(record)
    if not records:
        raise EvalError(f"{where}: no usable questions" + (f" ({problems[0]})" if problems else ""))
    return Dataset(path.name, "qa", tuple(records), tuple(problems))


# --- cache folders -------------------------------------------------------------------------


def corpus_cache(cache_root: Path, corpus: Path) -> Path:
    """Index folder for another corpus: keyed by the sha1 of its absolute path."""
    key = hashlib.sha1(str(corpus.resolve()).encode("utf-8")).hexdigest()[:16]
    return cache_root / f"corpus-{key}" / "index"


def corpus_collection(base: str, corpus: Path) -> str:
    """Milvus collection name for another corpus: ``base`` and the sha1 of its absolute path,
    so that each corpus an evaluation indexes gets its own index in the same store."""
    key = hashlib.sha1(str(corpus.resolve()).encode("utf-8")).hexdigest()[:16]
    return f"{base[:80]}_corpus_{key}"


def doc_file_name(doc_id: str) -> str:
    """Reversible file name for a BEIR ``_id``: unsafe characters percent-encoded, never hidden."""
    name = quote(doc_id, safe="-_")
    return ("%2E" + name[1:] if name.startswith(".") else name) + ".txt"


def doc_id_of(file_name: str) -> str:
    return unquote(file_name.removesuffix(".txt"))


# --- BEIR ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeirDoc:
    id: str
    title: str
    text: str


def _jsonl_objects(path: Path, problems: list[str]) -> list[tuple[int, dict[str, object]]]:
    items = _jsonl_items(_read_text(path), str(path), problems)
    out = [(n, raw) for n, raw in items if isinstance(raw, dict)]
    problems.extend(
        f"{path}:{n}: not a JSON object" for n, raw in items if not isinstance(raw, dict)
    )
    return out


def _field(raw: dict[str, object], name: str) -> str:
    value = raw.get(name, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name!r} must be a string")
    return value


def read_qrels(path: Path, problems: list[str]) -> dict[str, dict[str, int]]:
    """query id -> {corpus id: grade}; the header line (query-id, corpus-id, score) is skipped."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        cols = line.split("\t") if "\t" in line else line.split()
        if not line.strip() or (number == 1 and not cols[-1].strip().lstrip("-").isdigit()):
            continue
        if len(cols) < 3 or not cols[2].strip().lstrip("-").isdigit():
            problems.append(f"{path}:{number}: expected query-id, corpus-id, integer score")
            continue
        qrels.setdefault(cols[0].strip(), {})[cols[1].strip()] = int(cols[2])
    return qrels


def load_beir(folder: Path, split: str = "test") -> tuple[Dataset, list[BeirDoc]]:
    """Queries present in ``qrels/<split>.tsv`` (graded relevance, > 0 = relevant) and the
    corpus documents of a BEIR folder."""
    problems: list[str] = []
    docs: list[BeirDoc] = []
    seen: set[str] = set()
    for number, raw in _jsonl_objects(folder / "corpus.jsonl", problems):
        try:
            doc = BeirDoc(_field(raw, "_id"), _field(raw, "title"), _field(raw, "text"))
            if not doc.id or doc.id in seen:
                raise ValueError("'_id' is missing" if not doc.id else f"duplicate _id {doc.id!r}")
        except ValueError as exc:
            problems.append(f"{folder / 'corpus.jsonl'}:{number}: {exc}; skipped")
            continue
        seen.add(doc.id)
        docs.append(doc)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv", problems)
    records: list[QARecord] = []
    for number, raw in _jsonl_objects(folder / "queries.jsonl", problems):
        try:
            qid, text = _field(raw, "_id"), _field(raw, "text").strip()
        except ValueError as exc:
            problems.append(f"{folder / 'queries.jsonl'}:{number}: {exc}; skipped")
            continue
        if qid not in qrels:
            continue
        if not text:
            problems.append(f"{folder / 'queries.jsonl'}:{number}: empty query text; skipped")
            continue
        grades = tuple(qrels.pop(qid).items())
        gold = tuple(GoldSource(d) for d, g in grades if g > 0)
        records.append(QARecord(qid, text, (), gold, False, number, grades))
    if qrels:
        some = ", ".join(repr(q) for q in list(qrels)[:3])
        problems.append(
            f"{len(qrels)} queries of qrels/{split}.tsv are not in queries.jsonl ({some})"
        )
    if not records:
        raise EvalError(f"{folder}: no query of qrels/{split}.tsv found in queries.jsonl")
    return Dataset(folder.name, "beir", tuple(records), tuple(problems)), docs


def beir_cache(folder: Path, cache_root: Path) -> Path:
    """Cache folder of a BEIR benchmark, keyed by the sha1 of its corpus.jsonl content."""
    try:
        with (folder / "corpus.jsonl").open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha1")
    except OSError as exc:
        raise EvalError(f"{folder}: cannot read corpus.jsonl ({exc.strerror})") from None
    return cache_root / f"beir-{digest.hexdigest()[:16]}"


def write_beir_docs(
    docs: Sequence[BeirDoc], out: Path, progress: Progress | None = None
) -> dict[str, str]:
    """Write each document as ``<doc_file_name(_id)>.txt`` (title line, then text) once; files
    whose content is unchanged are left alone, so the incremental indexer sees no change.
    Returns the file name -> _id map."""
    out.mkdir(parents=True, exist_ok=True)
    names = {doc_file_name(doc.id): doc.id for doc in docs}
    marker = out / ".askdoc-eval-complete"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == str(len(names)):
        return names
    for done, doc in enumerate(docs, 1):
        name = doc_file_name(doc.id)
        if len(name.encode("utf-8")) > 240:
            raise EvalError(f"BEIR document id too long for a file name: {doc.id[:40]!r}...")
        content = f"{doc.title}\n{doc.text}\n"
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8", newline="\n")
        if progress is not None and (done % 200 == 0 or done == len(docs)):
            progress("write", done, len(docs))
    for stale in out.glob("*.txt"):
        if stale.name not in names:
            stale.unlink()
    marker.write_text(f"{len(names)}\n", encoding="utf-8")
    return names
