"""Promise 2: damage to any file in index/ is detected, never served.

Each case copies a pristine index, truncates it, flips one bit, overwrites a run of bytes or its
header, or zeroes a page, in the database, the FAISS file or a WAL holding the last commit. Then:

- serving (an Engine asking several questions) either raises IndexCorruptError naming the file,
  or serves a damaged FAISS file's index built in memory from the stored vectors (writing
  nothing), or gives exactly the pristine answers
  (for a WAL: those of the last commit or, when SQLite's frame checksums drop the damaged tail,
  of the commit before it);
- FAISS only ever deserializes bytes whose sha256 a manifest records (checked before reading);
- ``verify_index`` reports a problem unless every served table (documents, passages, referenced
  vectors, sentence vectors, manifest, full-text index) is byte-for-byte the pristine one.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import pytest
from reliability_helpers import fake_settings, figure, paragraph, scaled

from askdoc.cli import main
from askdoc.config import Settings
from askdoc.engine import Engine
from askdoc.errors import IndexCorruptError
from askdoc.index.repair import repair_index
from askdoc.index.schema import DB_NAME
from askdoc.index.vectors import faiss_name
from askdoc.index.verify import verify_index
from tests.conftest import SAMPLE_CORPUS, FakeEmbedder

QUESTIONS = (
    "Who signed the strategic partnership agreement?",
    "How many containers were sent?",
    "What does the harbour archive keep?",
    "Where is the granite quarry?",
)
SERVED = ("meta", "documents", "chunks", "chunks_fts_data", "chunks_fts_idx")
SERVED += ("chunks_fts_docsize", "chunks_fts_config")

Answers = list[Any]


def answers(settings: Settings) -> Answers:
    engine = Engine(settings, FakeEmbedder())
    try:
        out = []
        for question in QUESTIONS:
            answer = engine.ask(question)
            out.append(
                (
                    answer.found,
                    [(s.text, s.source, s.start, s.end) for s in answer.sentences],
                    [(s.path, s.start, s.end, s.text, s.heading, s.page) for s in answer.sources],
                )
            )
        return out
    finally:
        engine.close()


def served_dump(index: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The tables a reader serves from, plus the passage and sentence vectors passages use
    (leftovers of an interrupted build -- staged rows, unused vectors -- are never served and not
    compared)."""
    conn = sqlite3.connect(index / DB_NAME)
    try:
        dump = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in SERVED}
        for table in ("vectors", "sentences"):
            dump[table] = conn.execute(
                f"SELECT * FROM {table} WHERE hash IN (SELECT text_hash FROM chunks) ORDER BY 1"
            ).fetchall()
        return dump
    finally:
        conn.close()


class Pristine:
    """A built index to damage, with the answers and tables of each acceptable state."""

    def __init__(self, index: Path, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self.states: list[tuple[Answers, dict[str, list[tuple[Any, ...]]]]] = []
        self.faiss_shas: set[str] = set()

    def record(self, scratch: Path) -> None:
        """Add the state this index shows when opened (on a scratch copy: opening may
        checkpoint a WAL)."""
        shutil.copytree(self.index, scratch)
        settings = fake_settings(self.settings.corpus, scratch)
        self.states.append((answers(settings), served_dump(scratch)))
        for path in self.index.glob("vectors-*.faiss"):
            self.faiss_shas.add(hashlib.sha256(path.read_bytes()).hexdigest())


def write_corpus(root: Path, rng: random.Random, extra: int) -> None:
    shutil.copytree(SAMPLE_CORPUS, root)
    topics = ["harbour archive", "granite quarry", "copper beacon", "river orchard"]
    for n in range(extra):
        topic = topics[n % len(topics)]
        body = "\n\n".join(paragraph(rng, f"The {topic} {n}") for _ in range(3))
        (root / f"notes{n:02d}.md").write_text(f"# The {topic}\n\n{body}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pristine]:
    """``plain``: two generations, checkpointed. ``wal``: a third generation still in the WAL
    (a reader held the database open while it was published). Both approximate (exact_below
    0), the kind with a FAISS file. ``flat``: the same corpus exact, with no FAISS file (its
    index is built from the stored vectors)."""
    root = tmp_path_factory.mktemp("pristine")
    rng = random.Random(99)
    corpus = root / "corpus"
    write_corpus(corpus, rng, 8)
    flat = Pristine(root / "flat", fake_settings(corpus, root / "flat"))
    Engine(flat.settings, FakeEmbedder()).build()
    flat.record(root / "scratch-flat")
    live = fake_settings(corpus, root / "live", exact_below=0)
    Engine(live, FakeEmbedder()).build()
    (corpus / "notes00.md").write_text("# The harbour archive\n\nIt keeps the old maps.\n")
    Engine(live, FakeEmbedder()).build()
    plain = Pristine(root / "plain", live)
    shutil.copytree(live.index, plain.index)
    plain.record(root / "scratch-plain")

    holder = sqlite3.connect(live.index / DB_NAME)
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM chunks").fetchone()  # pins generation 2
    (corpus / "notes01.md").write_text("# The granite quarry\n\nIt lies north of Varn.\n")
    Engine(live, FakeEmbedder()).build()
    wal = Pristine(root / "wal", live)
    wal.index.mkdir()
    for name in (DB_NAME, f"{DB_NAME}-wal"):
        shutil.copy2(live.index / name, wal.index / name)
    for path in live.index.glob("vectors-*.faiss"):
        shutil.copy2(path, wal.index / path.name)
    holder.rollback()
    holder.close()
    assert (wal.index / f"{DB_NAME}-wal").stat().st_size > 0
    wal.record(root / "scratch-wal")  # generation 3, read from the WAL
    wal.states.append(plain.states[0])  # generation 2: the WAL's frames dropped
    wal.faiss_shas |= plain.faiss_shas
    assert wal.states[0][0] != plain.states[0][0], "the WAL generation must answer differently"
    return {"plain": plain, "wal": wal, "flat": flat}


# --- damage ------------------------------------------------------------------------------------

Damage = Callable[[bytearray, random.Random], str]


def truncate(data: bytearray, rng: random.Random) -> str:
    size = rng.randrange(0, len(data))
    del data[size:]
    return f"truncated to {size} bytes"


def bitflip(data: bytearray, rng: random.Random) -> str:
    pos = rng.randrange(len(data))
    bit = rng.randrange(8)
    data[pos] ^= 1 << bit
    return f"bit {bit} of byte {pos} flipped"


def overwrite(data: bytearray, rng: random.Random) -> str:
    pos, size = rng.randrange(len(data)), rng.randint(2, 64)
    data[pos : pos + size] = rng.randbytes(len(data[pos : pos + size]))
    return f"{size} random bytes at {pos}"


def header(data: bytearray, rng: random.Random) -> str:
    size = rng.randint(1, 100)
    fill = bytes(size) if rng.random() < 0.3 else rng.randbytes(size)
    data[:size] = fill[: len(data)]
    return f"header: first {size} bytes overwritten"


def zero_page(data: bytearray, rng: random.Random) -> str:
    page = rng.randrange(max(1, len(data) // 4096))
    data[page * 4096 : (page + 1) * 4096] = bytes(len(data[page * 4096 : (page + 1) * 4096]))
    return f"page {page} zeroed"


DAMAGES: tuple[Damage, ...] = (bitflip, bitflip, truncate, overwrite, header, zero_page)


def cases(total: int) -> Iterator[tuple[int, str, str, Damage]]:
    """(seed, state, file, damage): most on the database (with and without a FAISS file),
    the rest on FAISS and WAL files."""
    plan = [("plain", DB_NAME)] * 5 + [("plain", "faiss")] * 2 + [("wal", f"{DB_NAME}-wal")] * 2
    plan += [("wal", DB_NAME), ("flat", DB_NAME), ("flat", DB_NAME)]
    for n in range(total):
        state, target = plan[n % len(plan)]
        yield n, state, target, DAMAGES[(n // len(plan)) % len(DAMAGES)]


# --- one case --------------------------------------------------------------------------------


def run_case(
    pristine: Pristine, work: Path, seed: int, target: str, damage: Damage, spy: list[str]
) -> str:
    """Damage a copy, serve it and verify it; the outcome (asserting the promise)."""
    index = work / "index"
    shutil.copytree(pristine.index, index)
    if target == "faiss":
        current = sorted(index.glob("vectors-*.faiss"))[-1]
        target = current.name
    path = index / target
    data = bytearray(path.read_bytes())
    what = damage(data, random.Random(seed))
    path.write_bytes(bytes(data))
    checked = work / "checked"
    shutil.copytree(index, checked)
    problems = verify_index(checked)
    settings = fake_settings(pristine.settings.corpus, index)
    del spy[:]
    try:
        served: Answers | None = answers(settings)
    except IndexCorruptError as exc:
        message = str(exc)
        assert str(index) in message and (DB_NAME in message or "vectors-" in message), message
        served = None
    if target.startswith("vectors-"):
        assert path.read_bytes() == bytes(data), "a reader wrote the FAISS file"
    shas = pristine.faiss_shas | {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in index.glob("vectors-*.faiss")
    }
    assert set(spy) <= shas, f"FAISS read unchecked bytes ({target}: {what})"
    good = [i for i, (a, _) in enumerate(pristine.states) if a == served]
    assert served is None or good, f"wrong answers served after {target}: {what}"
    if not problems:
        dump = served_dump(checked)
        assert any(d == dump for _, d in pristine.states), f"undetected: {target}: {what}"
    if served is None:
        return "detected on load or query"
    if target.startswith("vectors-") and problems:
        return "FAISS index built in memory from stored vectors"
    if good[0] > 0:
        return "reverted to the previous commit (WAL frames dropped)"
    return "served correctly; verify flags it" if problems else "harmless (unused bytes)"


@pytest.mark.timeout(3600)
def test_damage_is_detected_never_served(
    pristine: dict[str, Pristine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy: list[str] = []
    real = faiss.deserialize_index

    def spying(buffer: Any) -> Any:
        spy.append(hashlib.sha256(bytes(buffer)).hexdigest())
        return real(buffer)

    monkeypatch.setattr(faiss, "deserialize_index", spying)
    total = scaled(ci=50, full=500)
    outcomes: Counter[tuple[str, str]] = Counter()
    for seed, state, target, damage in cases(total):
        work = tmp_path / f"case{seed}"
        outcome = run_case(pristine[state], work, seed, target, damage, spy)
        label = "faiss" if target == "faiss" else f"{state}:{target}"
        outcomes[(label, outcome)] += 1
        shutil.rmtree(work)
    figure("corruption cases", total=total, wrong_answers_served=0, undetected_damage=0)
    for (label, outcome), count in sorted(outcomes.items()):
        figure("  corruption outcome", file=label, outcome=outcome, cases=count)


def test_repair_of_faiss_file_is_verified(pristine: dict[str, Pristine], tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(pristine["plain"].index, index)
    faiss_file = sorted(index.glob("vectors-*.faiss"))[-1]
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    problems = verify_index(index)
    assert problems and problems[0].startswith(faiss_file.name)
    settings = fake_settings(pristine["plain"].settings.corpus, index)
    from reliability_helpers import fake_identity

    from askdoc.index.reader import IndexReader

    with pytest.raises(IndexCorruptError, match=faiss_file.name):
        IndexReader(index, *fake_identity(settings), repair=False)
    assert answers(settings) == pristine["plain"].states[0][0]  # built in memory
    assert verify_index(index) == problems  # a reader writes nothing
    assert f"rebuilt {faiss_name(3)} from the stored vectors" in repair_index(index)
    assert verify_index(index) == []
    assert answers(settings) == pristine["plain"].states[0][0]  # from the new file


def test_cli_verify_exit_codes(
    pristine: dict[str, Pristine], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    shutil.copytree(pristine["plain"].index, index)
    assert main(["--index", str(index), "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    conn = sqlite3.connect(index / DB_NAME)
    conn.execute(
        "UPDATE chunks SET text = text || ' (edited)' WHERE id = (SELECT min(id) FROM chunks)"
    )
    conn.commit()
    conn.close()
    assert main(["--index", str(index), "verify"]) == 1
    out = capsys.readouterr().out
    assert "askdoc.sqlite3: 1 passages fail their checksum" in out
