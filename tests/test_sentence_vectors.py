"""Sentence vectors pooled at index time: packing, pooling, storage, use by the answer step,
garbage collection and damage detection; the real model's pooled vectors."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from askdoc.answer import AnswerParams, compose, score_sentences, sentence_candidates
from askdoc.config import Settings
from askdoc.embedder import Embedder
from askdoc.engine import Engine
from askdoc.errors import IndexCorruptError
from askdoc.index.schema import DB_NAME
from askdoc.index.verify import verify_index
from askdoc.ingest.sentences import split_sentences
from askdoc.render import passage_text, source_json
from askdoc.sentence_vectors import body_spans, pack, pool, unpack
from askdoc.types import Chunk, Hit
from tests.conftest import FakeEmbedder


def unit_rows(count: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def test_pack_round_trip_keeps_spans_and_cosines() -> None:
    vectors = unit_rows(7)
    spans = [(i * 10, i * 10 + 9) for i in range(7)]
    blob = pack(spans, vectors)
    assert len(blob) == 8 + 7 * (8 + 4 + 384)
    got_spans, got = unpack(blob, 384)
    assert got_spans == spans
    cosines = np.sum(got * vectors, axis=1)
    assert cosines.min() > 0.999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_pack_of_nothing() -> None:
    spans, vectors = unpack(pack([], np.zeros((0, 384), np.float32)), 384)
    assert spans == [] and len(vectors) == 0


@pytest.mark.parametrize("cut", [0, 3, 9, 100, -1])
def test_malformed_blobs_are_refused(cut: int) -> None:
    blob = pack([(0, 5), (6, 9)], unit_rows(2))
    with pytest.raises(ValueError):
        unpack(blob[:cut], 384)


def test_blob_of_another_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="dimension"):
        unpack(pack([(0, 5)], unit_rows(1, dim=16)), 384)


def test_pool_averages_the_word_pieces_inside_each_span() -> None:
    tokens = np.array([[9, 9], [1, 0], [3, 0], [0, 1], [9, 9]], dtype=np.float32)
    offsets = [(0, 0), (0, 3), (4, 7), (9, 12), (0, 0)]  # [CLS] w1 w2 w3 [SEP]
    got = pool(tokens, offsets, [(0, 7), (9, 12), (2, 5)])
    assert np.allclose(got[0], [1, 0])  # mean of (1,0) and (3,0), normalized
    assert np.allclose(got[1], [0, 1])
    # (2, 5) holds no whole word-piece: the two it overlaps are used
    assert np.allclose(got[2], [1, 0])


def test_body_spans_leave_out_sentences_too_short_to_answer() -> None:
    text = "Yes. x = 1\nThe value of x is one here."
    assert [text[a:b] for a, b in body_spans(text, 0)] == ["The value of x is one here."]


def test_body_spans_skip_the_heading_line() -> None:
    text = "Intro > Part\nThe first sentence is here. The second one follows it."
    body = len("Intro > Part") + 1
    spans = body_spans(text, body)
    assert [text[a:b] for a, b in spans] == [
        "The first sentence is here.",
        "The second one follows it.",
    ]
    assert [(a - body, b - body) for a, b in spans] == split_sentences(text[body:])


def hit_for(text: str, start: int = 100, path: str = "a.txt") -> Hit:
    chunk = Chunk(path, 0, text, start, start + len(text), 1, 1, None, "")
    return Hit(chunk_id=1, chunk=chunk, score=1.0, dense_score=0.5)


class CountingEmbed:
    def __init__(self, embedder: FakeEmbedder) -> None:
        self.embedder = embedder
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.embedder.encode(texts)


def test_stored_vectors_are_used_and_only_missing_sentences_embedded() -> None:
    fake = FakeEmbedder()
    text = "Paris is the capital of France. Berlin is the capital of Germany. Rome is in Italy."
    hit = hit_for(text)
    candidates = sentence_candidates([hit])
    assert len(candidates) == 3
    spans = [(a, b) for _n, a, b, *_ in candidates]
    stored = {span: fake.encode([text[span[0] - 100 : span[1] - 100]])[0] for span in spans[:2]}
    embed = CountingEmbed(fake)
    question = fake.encode(["capital of Germany"])[0]
    scored = score_sentences(question, candidates, embed, {}, AnswerParams(), (0.5,), "", [stored])
    assert embed.texts == ["Rome is in Italy."]  # the one without a stored vector
    assert len(scored) == 3
    assert scored[0].text == "Berlin is the capital of Germany."


def test_missing_sentences_beyond_the_limit_are_not_scored() -> None:
    fake = FakeEmbedder()
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(20))
    candidates = sentence_candidates([hit_for(text)])
    embed = CountingEmbed(fake)
    params = AnswerParams(embed_limit=4)
    scored = score_sentences(fake.encode(["topic"])[0], candidates, embed, {}, params, (), "", [])
    assert len(embed.texts) == 4 and len(scored) == 4


def sentence_rows(index: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(index / DB_NAME)
    try:
        return dict(conn.execute("SELECT hash, data FROM sentences").fetchall())
    finally:
        conn.close()


def test_build_stores_sentence_vectors_for_every_passage(
    fake_engine: Engine, settings: Settings
) -> None:
    fake_engine.build()
    conn = sqlite3.connect(settings.index / DB_NAME)
    try:
        rows = conn.execute(
            "SELECT c.text, s.data FROM chunks c JOIN sentences s ON s.hash = c.text_hash"
        ).fetchall()
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    finally:
        conn.close()
    assert rows and len(rows) == chunks
    for text, blob in rows:
        spans, vectors = unpack(blob, 384)
        assert spans == [(a, b) for a, b in split_sentences(text) if len(text[a:b].split()) >= 4]
        assert len(vectors) == len(spans)


def test_asking_embeds_no_sentence_when_all_are_stored(
    fake_engine: Engine, fake_embedder: FakeEmbedder
) -> None:
    fake_engine.build()
    fake_embedder.encoded.clear()
    answer = fake_engine.ask("Which think tank monitors the conflict?")
    assert answer.sources
    assert len(fake_embedder.encoded) == 1  # the question only


def test_removed_documents_lose_their_sentence_vectors(
    fake_engine: Engine, settings: Settings
) -> None:
    extra = settings.corpus / "extra.txt"
    extra.write_text("Zebras sleep standing up. Their stripes confuse flies.\n", encoding="utf-8")
    fake_engine.build()
    with_extra = sentence_rows(settings.index)
    extra.unlink()
    fake_engine.build()
    without = sentence_rows(settings.index)
    assert len(without) == len(with_extra) - 1
    assert set(without) < set(with_extra)


def test_damaged_sentence_vectors_are_detected(fake_engine: Engine, settings: Settings) -> None:
    fake_engine.build()
    fake_engine.close()
    conn = sqlite3.connect(settings.index / DB_NAME)
    with conn:
        for key, blob in conn.execute("SELECT hash, data FROM sentences").fetchall():
            flipped = bytearray(blob)
            flipped[-1] ^= 0x40  # one bit of the last sentence vector of every passage
            conn.execute("UPDATE sentences SET data = ? WHERE hash = ?", (bytes(flipped), key))
    conn.close()
    problems = verify_index(settings.index)
    assert any("sentence vectors fail their checksum" in p for p in problems)
    with pytest.raises(IndexCorruptError, match="sentence vectors of passage"):
        fake_engine.ask("Which think tank monitors the conflict?")


# ----------------------------------------------------------------- real model


@pytest.mark.model
def test_real_model_pools_sentences_from_the_passage_pass(real_embedder: Embedder) -> None:
    heading = "Water"
    body = (
        "Water boils at 100 degrees Celsius at sea level. "
        "The Eiffel Tower was finished in 1889 for the World's Fair."
    )
    text = f"{heading}\n{body}"
    spans = body_spans(text, len(heading) + 1)
    vectors, pooled = real_embedder.encode_passages([text], [spans])
    assert np.allclose(vectors, real_embedder.encode([text]), atol=1e-5)
    assert pooled[0].shape == (2, real_embedder.dimension)
    alone = real_embedder.encode([text[a:b] for a, b in spans])
    # each pooled sentence is closest to its own sentence embedded alone
    similarity = pooled[0] @ alone.T
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]
    assert similarity[0, 0] > 0.7 and similarity[1, 1] > 0.7
    tower = real_embedder.encode_query("When was the Eiffel Tower built?")
    assert float(pooled[0][1] @ tower) > float(pooled[0][0] @ tower)


def test_real_model_long_text_is_truncated_like_the_model(real_embedder: Embedder) -> None:
    text = "Alpha beta gamma delta. " * 120  # far over 256 word-pieces
    spans = split_sentences(text)
    vectors, pooled = real_embedder.encode_passages([text], [spans])
    assert np.allclose(vectors, real_embedder.encode([text]), atol=1e-5)
    assert len(pooled[0]) == len(spans)  # sentences past the limit take the passage's mean
    assert np.isfinite(pooled[0]).all()


def test_real_engine_answers_from_stored_vectors(
    sample_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[str] = []
    real_encode = sample_engine.embedder.encode

    def counting(texts: Sequence[str], *args: object, **kwargs: object) -> np.ndarray:
        embedded.extend(texts)
        return real_encode(texts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sample_engine.embedder, "encode", counting)
    answer = sample_engine.ask("Which think tank keeps a daily watch on the war?")
    assert embedded == ["Which think tank keeps a daily watch on the war?"]
    assert answer.sources


def test_every_chosen_sentence_of_a_source_is_highlighted() -> None:
    text = "Paris is the capital of France. Rome is in Italy. Berlin is the capital of Germany."
    hit = hit_for(text)
    spans = [(a, b) for _n, a, b, *_ in sentence_candidates([hit])]
    question = unit_rows(1)[0]
    other = unit_rows(1, seed=1)[0]
    other = other - (other @ question) * question
    other /= np.linalg.norm(other)
    stored = {spans[0]: question, spans[1]: other, spans[2]: question}
    answer = compose(
        "Which capitals?",
        "Which capitals?",
        [hit],
        question,
        CountingEmbed(FakeEmbedder()),
        lambda _term: 1,
        10,
        AnswerParams(),
        lambda _hit: stored,
    )
    assert [s.start for s in answer.sentences] == [spans[0][0], spans[2][0]]
    source = answer.sources[0]
    assert source.highlight == spans[0] and source.highlights == (spans[0], spans[2])
    rendered = passage_text(source)
    reversed_parts = [
        rendered.plain[s.start : s.end] for s in rendered.spans if "reverse" in str(s.style)
    ]
    assert reversed_parts == [text[a - 100 : b - 100] for a, b in (spans[0], spans[2])]
    data = source_json(source, Path("corpus"))
    assert [h["text"] for h in data["highlights"]] == reversed_parts
    assert data["highlight"]["text"] == reversed_parts[0]
