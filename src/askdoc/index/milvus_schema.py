"""The Milvus side of the store: the only pymilvus import. Connections by URI, the four
collections of an index and their fields, every request askdoc makes, Milvus errors as one line.

An index named N (setting ``milvus_collection``) is four collections:

* ``N_passages``: one row per passage: its text and heading path, both also in ``search``
  (analysed by Milvus: a ``BM25`` function fills the sparse field ``sparse``; the embedded
  store's full-text index holds both too), document path and id, exact span,
  lines, page, the file's and the passage's sha256 (the passage's is the vector key: a passage
  already embedded with this model is never embedded again), the model, the dense vector, the
  packed sentence vectors and a checksum of the fields a citation shows.
* ``N_documents``: one row per document: path, size, mtime, sha256, kind, passage count, the
  words of its passages (for BM25's average passage length). A
  document's row is written after its passages and text, so a row means "complete".
* ``N_texts``: each document's text and structure (JSON, in parts of at most 60,000
  characters: a VARCHAR holds 65,535 bytes), for the source viewer and sentence spans.
* ``N_meta``: the manifest, the words of all passages, the files remembered as unreadable,
  and the writer's lease.

Milvus needs a vector field in every collection: documents, texts and meta carry a 2-dimension
``unused`` one, always zero.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from askdoc.config import Settings
from askdoc.errors import StoreError
from askdoc.index.milvus_bm25 import stems
from askdoc.types import Chunk

INSTALL = "pip install 'askdoc[milvus]'"
MAX_VARCHAR = 65_535
"""Milvus's largest VARCHAR, in bytes."""
PART_CHARS = 60_000
"""A document's JSON (ASCII) is stored in parts of this many characters."""
MAX_PATH = 4096
CONNECT_SECONDS = 5.0
"""How long to wait for a Milvus server (or Milvus Lite) to answer when connecting."""
MAX_TOPK = 16_384
"""Milvus's largest ``limit`` for one search."""
BM25_K1 = 1.2
BM25_B = 0.75
UNUSED = [0.0, 0.0]
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase"]}
"""Milvus's analyser for BM25 splits ``search`` into the words askdoc wrote there: askdoc
stems them itself (``stemmed``), with the Porter stemmer of the embedded store's FTS5
tokenizer, so both stores count the same words ("10s" is "10" in both; Milvus's own English
stemmer differs on such words). No stop-word filter: askdoc leaves its own stop words out of
questions (``text.content_terms``)."""
PASSAGE_FIELDS = [
    "id",
    "doc_id",
    "path",
    "ordinal",
    "text",
    "heading",
    "span_start",
    "span_end",
    "line_start",
    "line_end",
    "page",
    "file_sha256",
    "chunk_sha256",
    "row_sha256",
]
"""Passage fields a citation needs (``passage_chunk``), without vectors."""


def _pymilvus() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus_lite imports the deprecated pkg_resources
            import pymilvus
    except ImportError:
        raise StoreError(f"the Milvus store needs pymilvus and milvus-lite: {INSTALL}") from None
    for handler in logging.getLogger("pymilvus").handlers:  # its errors reach the user as one line
        handler.setLevel(logging.CRITICAL)
    return pymilvus


@contextmanager
def _quiet_logging() -> Iterator[None]:
    """Milvus Lite logs its failures on the root logger (stderr); askdoc says them in one line."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def int_id(*parts: object) -> int:
    """A stable 63-bit id (Milvus primary keys are signed 64-bit)."""
    raw = "\x00".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") >> 1


def doc_id_of(path: str) -> int:
    return int_id("document", path)


def stemmed(text: str) -> str:
    """``text`` as the words BM25 indexes and searches: FTS5's words, Porter stems."""
    return " ".join(stems(text))


def search_text(heading: str, text: str) -> str:
    """What BM25 sees of a passage: the stems of its heading path and of its text."""
    return stemmed(f"{heading}\n{text}" if heading else text)


def passage_row_sha256(row: dict[str, Any]) -> str:
    """Checksum of what a citation shows: path, span, lines, page, heading and text."""
    fields = [row[name] for name in PASSAGE_FIELDS if name not in ("id", "row_sha256")]
    raw = json.dumps(fields, ensure_ascii=True)
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def fits(text: str, limit: int = MAX_VARCHAR) -> bool:
    return len(text) * 4 <= limit or len(text.encode("utf-8", "surrogatepass")) <= limit


def encode_sentences(blob: bytes) -> str:
    """Packed sentence vectors as VARCHAR text ("" when too long: they are embedded on use)."""
    text = base64.b64encode(blob).decode("ascii")
    return text if len(text) <= MAX_VARCHAR else ""


def decode_sentences(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def passage_chunk(row: dict[str, Any]) -> Chunk:
    page = int(row["page"])
    return Chunk(
        doc_path=str(row["path"]),
        ordinal=int(row["ordinal"]),
        text=str(row["text"]),
        start=int(row["span_start"]),
        end=int(row["span_end"]),
        line_start=int(row["line_start"]),
        line_end=int(row["line_end"]),
        page=page if page > 0 else None,
        heading=str(row["heading"]),
    )


@dataclass(frozen=True)
class Names:
    passages: str
    documents: str
    texts: str
    meta: str

    @classmethod
    def of(cls, base: str) -> Names:
        return cls(f"{base}_passages", f"{base}_documents", f"{base}_texts", f"{base}_meta")

    def all(self) -> tuple[str, ...]:
        return (self.passages, self.documents, self.texts, self.meta)


class MilvusIndex:
    """One connection to the collections of an index (see the module's docstring)."""

    def __init__(self, settings: Settings, uri: str, lite: bool, where: str) -> None:
        self.where = where
        self.names = Names.of(settings.milvus_collection)
        pymilvus = _pymilvus()
        self._exceptions: tuple[type[BaseException], ...] = (pymilvus.MilvusException,)
        if lite:
            folder = os.path.dirname(os.path.abspath(uri))
            if not os.path.isdir(folder):
                raise StoreError(f"{uri}: the folder {folder} does not exist")
            os.environ.setdefault("LOG_LEVEL", "FATAL")  # Milvus Lite's own log, on stderr
        # an alias of its own: pymilvus shares one connection between clients of the same URI,
        # and closing one (a finished build) would close the engine's too
        alias = f"askdoc-{uuid.uuid4().hex}"
        options: dict[str, Any] = {"uri": uri, "timeout": CONNECT_SECONDS, "alias": alias}
        if settings.milvus_token:
            options["token"] = settings.milvus_token
        if settings.milvus_database:
            options["db_name"] = settings.milvus_database
        try:
            with warnings.catch_warnings(), _quiet_logging():
                warnings.simplefilter("ignore")
                self.client = pymilvus.MilvusClient(**options)
        except self._exceptions as exc:
            raise StoreError(self._connect_problem(uri, lite, exc)) from None
        except (OSError, RuntimeError) as exc:
            raise StoreError(f"{uri}: Milvus Lite cannot open it: {exc}") from None

    @staticmethod
    def _connect_problem(uri: str, lite: bool, exc: Any) -> str:
        message = str(getattr(exc, "message", "") or exc)
        if lite and "Open local milvus failed" in message:
            return (
                f"{uri} is open in another process (Milvus Lite serves one process at a "
                "time): close the other askdoc, or use a Milvus server"
            )
        return f"cannot reach the Milvus server at {uri}: {' '.join(message.split())[:200]}"

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Milvus exceptions as one StoreError line naming the store and what was being done."""
        try:
            yield
        except self._exceptions as exc:
            message = " ".join(str(getattr(exc, "message", "") or exc).split())[:200]
            raise StoreError(f"{self.where}: {doing} failed: {message}") from None

    def close(self) -> None:
        try:
            self.client.close()
        except self._exceptions:
            pass

    # ------------------------------------------------------------------ collections

    def exists(self) -> bool:
        with self.errors("listing collections"):
            return bool(self.client.has_collection(self.names.meta))

    def create(self, dimension: int) -> None:
        """Create (and load) the four collections, those missing."""
        with self.errors("creating the collections"):
            present = set(self.client.list_collections())
            for name in self.names.all():
                if name not in present:
                    schema, index = self._definition(name, dimension)
                    self.client.create_collection(
                        name, schema=schema, index_params=index, consistency_level="Strong"
                    )

    def drop(self) -> None:
        with self.errors("dropping the collections"):
            for name in self.names.all():
                if self.client.has_collection(name):
                    self.client.drop_collection(name)

    def _definition(self, name: str, dimension: int) -> tuple[Any, Any]:
        pymilvus = _pymilvus()
        kind = pymilvus.DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        index = self.client.prepare_index_params()
        text = {"max_length": MAX_VARCHAR}
        sha = {"max_length": 64}
        if name == self.names.passages:
            schema.add_field("id", kind.INT64, is_primary=True)
            schema.add_field("doc_id", kind.INT64)
            schema.add_field("path", kind.VARCHAR, max_length=MAX_PATH)
            schema.add_field("ordinal", kind.INT64)
            schema.add_field("text", kind.VARCHAR, **text)
            schema.add_field("heading", kind.VARCHAR, **text)
            schema.add_field(
                "search", kind.VARCHAR, enable_analyzer=True, analyzer_params=ANALYZER, **text
            )
            for field in ("span_start", "span_end", "line_start", "line_end", "page"):
                schema.add_field(field, kind.INT64)
            for field in ("file_sha256", "chunk_sha256", "row_sha256", "model"):
                schema.add_field(field, kind.VARCHAR, **sha)
            schema.add_field("sentences", kind.VARCHAR, **text)
            schema.add_field("dense", kind.FLOAT_VECTOR, dim=dimension)
            schema.add_field("sparse", kind.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                pymilvus.Function(
                    name="bm25",
                    function_type=pymilvus.FunctionType.BM25,
                    input_field_names=["search"],
                    output_field_names=["sparse"],
                )
            )
            index.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
            index.add_index(
                field_name="sparse",
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
            )
            index.add_index(field_name="doc_id", index_type="INVERTED")
            index.add_index(field_name="chunk_sha256", index_type="INVERTED")
            return schema, index
        if name == self.names.meta:
            schema.add_field("key", kind.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("value", kind.VARCHAR, **text)
        elif name == self.names.documents:
            schema.add_field("doc_id", kind.INT64, is_primary=True)
            schema.add_field("path", kind.VARCHAR, max_length=MAX_PATH)
            schema.add_field("size", kind.INT64)
            schema.add_field("mtime", kind.DOUBLE)
            schema.add_field("kind", kind.VARCHAR, max_length=16)
            for field in ("sha256", "content_sha256"):
                schema.add_field(field, kind.VARCHAR, **sha)
            schema.add_field("passages", kind.INT64)
            schema.add_field("words", kind.INT64)
            schema.add_field("parts", kind.INT64)
        else:
            schema.add_field("id", kind.INT64, is_primary=True)
            schema.add_field("doc_id", kind.INT64)
            schema.add_field("part", kind.INT64)
            schema.add_field("data", kind.VARCHAR, **text)
        schema.add_field("unused", kind.FLOAT_VECTOR, dim=len(UNUSED))
        index.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
        return schema, index

    def dimension(self) -> int:
        with self.errors("reading the passages' schema"):
            info = self.client.describe_collection(self.names.passages)
        for field in info.get("fields", []):
            if field.get("name") == "dense":
                return int(field.get("params", {}).get("dim", 0))
        return 0

    # ------------------------------------------------------------------ meta

    def meta(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        with self.errors("reading the manifest"):
            rows = self.client.get(self.names.meta, ids=list(keys), output_fields=["value"])
        return {str(r["key"]): str(r["value"]) for r in rows}

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        safe = prefix.replace("\\", "").replace('"', "")
        with self.errors("reading the manifest"):
            rows = self._query(self.names.meta, f'key like "{safe}%"', ["key", "value"])
        return {str(r["key"]): str(r["value"]) for r in rows}

    def put_meta(self, values: dict[str, str]) -> None:
        if not values:
            return
        rows = [{"key": k, "value": v, "unused": UNUSED} for k, v in values.items()]
        with self.errors("writing the manifest"):
            self.client.upsert(self.names.meta, rows)

    def delete_meta(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        if wanted:
            with self.errors("writing the manifest"):
                self.client.delete(self.names.meta, ids=wanted)

    # ------------------------------------------------------------------ passages

    def upsert_passages(self, rows: list[dict[str, Any]], stored: set[int] | None = None) -> None:
        """Write passage rows: those whose id is in ``stored`` (all when it is None) replace
        theirs (upsert); the others, not stored yet, are inserted. An upsert deletes before it
        inserts, and in Milvus Lite 2.5.1 one upsert call takes time in proportion to the rows
        already stored (64 rows: 0.05 s at 13k rows, 0.21 s at 64k; an insert stays at 0.03 s),
        so a build that upserted every passage took time quadratic in its size."""
        upsert = [r for r in rows if stored is None or r["id"] in stored]
        insert = [r for r in rows if stored is not None and r["id"] not in stored]
        with self.errors("writing passages"):
            for write, part in ((self.client.upsert, upsert), (self.client.insert, insert)):
                for begin in range(0, len(part), 512):
                    write(self.names.passages, part[begin : begin + 512])

    def delete_passages(self, ids: Iterable[int]) -> None:
        wanted = list(ids)
        with self.errors("deleting passages"):
            for begin in range(0, len(wanted), 4096):
                self.client.delete(self.names.passages, ids=wanted[begin : begin + 4096])

    def passage_ids(self, doc_id: int) -> set[int]:
        with self.errors("reading passages"):
            rows = self._query(self.names.passages, f"doc_id == {int(doc_id)}", ["id"])
        return {int(r["id"]) for r in rows}

    def all_passage_docs(self) -> list[tuple[int, int]]:
        """(id, doc_id) of every passage (after a killed build, to find orphans)."""
        rows = self.all_rows(self.names.passages, ["id", "doc_id"])
        return [(int(r["id"]), int(r["doc_id"])) for r in rows]

    def all_rows(self, name: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of a collection whose primary key is an id (passages, texts)."""
        with self.errors("reading every row"):
            return self._query(name, "id >= 0", fields)

    def passages(self, ids: Sequence[int], fields: Sequence[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with self.errors("reading passages"):
            for begin in range(0, len(ids), 1024):
                part = [int(i) for i in ids[begin : begin + 1024]]
                out += self.client.get(self.names.passages, ids=part, output_fields=list(fields))
        return out

    def passages_by_hash(self, hashes: Sequence[str], model: str) -> dict[str, dict[str, Any]]:
        """Stored vectors of these passage hashes embedded with ``model``: hash -> row with
        ``dense`` and ``sentences`` (hashes are hex: safe in a filter)."""
        found: dict[str, dict[str, Any]] = {}
        clean = [h for h in dict.fromkeys(hashes) if h.isalnum()]
        with self.errors("reading stored vectors"):
            for begin in range(0, len(clean), 256):
                listed = ", ".join(f'"{h}"' for h in clean[begin : begin + 256])
                rows = self.client.query(
                    self.names.passages,
                    filter=f'chunk_sha256 in [{listed}] and model == "{model}"',
                    output_fields=["chunk_sha256", "dense", "sentences"],
                )
                for row in rows:
                    found.setdefault(str(row["chunk_sha256"]), row)
        return found

    def passages_overlapping_any(
        self, spans: Sequence[tuple[int, int, int]]
    ) -> list[dict[str, Any]]:
        """Passages overlapping any (doc_id, start, end), with their sentence vectors."""
        if not spans:
            return []
        condition = " or ".join(
            f"(doc_id == {int(d)} and span_start < {int(b)} and span_end > {int(a)})"
            for d, a, b in spans
        )
        with self.errors("reading sentence vectors"):
            return self._query(self.names.passages, condition, [*PASSAGE_FIELDS, "sentences"])

    def count(self, name: str) -> int:
        with self.errors("counting rows"):
            rows = self.client.query(name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        data = [np.asarray(vector, dtype=np.float32).reshape(-1).tolist()]
        with self.errors("dense search"):
            result = self.client.search(
                self.names.passages,
                data=data,
                anns_field="dense",
                limit=min(k, MAX_TOPK),
                search_params={"metric_type": "IP"},
                output_fields=[],
            )
        return [(int(hit["id"]), float(hit["distance"])) for hit in result[0]]

    def search_bm25(self, text: str, k: int) -> list[tuple[int, float]]:
        return self.search_bm25_many([text], k)[0]

    def search_bm25_many(self, texts: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Full-text searches for several texts in one request: (id, BM25) lists, best first."""
        asked = [t for t in texts if t.strip()]
        found: dict[str, list[tuple[int, float]]] = {}
        if asked:
            with self.errors("full-text search"):
                result = self.client.search(
                    self.names.passages,
                    data=asked,
                    anns_field="sparse",
                    limit=min(k, MAX_TOPK),
                    search_params={"metric_type": "BM25"},
                    output_fields=[],
                )
            for text, hits in zip(asked, result, strict=True):
                found[text] = [(int(hit["id"]), float(hit["distance"])) for hit in hits]
        return [found.get(t, []) for t in texts]

    # ------------------------------------------------------------------ documents and texts

    def upsert_document(self, row: dict[str, Any]) -> None:
        with self.errors("writing a document"):
            self.client.upsert(self.names.documents, [{**row, "unused": UNUSED}])

    def delete_document(self, doc_id: int) -> None:
        with self.errors("deleting a document"):
            self.client.delete(self.names.documents, ids=[int(doc_id)])
            self.client.delete(self.names.texts, filter=f"doc_id == {int(doc_id)}")

    def document_row(self, doc_id: int) -> dict[str, Any] | None:
        with self.errors("reading a document"):
            rows = self.client.get(self.names.documents, ids=[int(doc_id)])
        return rows[0] if rows else None

    def document_rows(self) -> list[dict[str, Any]]:
        fields = ["doc_id", "path", "size", "mtime", "sha256", "kind", "passages", "words", "parts"]
        with self.errors("listing documents"):
            return self._query(self.names.documents, "doc_id >= 0", [*fields, "content_sha256"])

    def put_text(self, doc_id: int, data: str) -> int:
        """Store a document's JSON in parts (replacing any); the number of parts."""
        parts = [data[i : i + PART_CHARS] for i in range(0, len(data), PART_CHARS)] or [""]
        rows = [
            {"id": int_id("text", doc_id, n), "doc_id": doc_id, "part": n, "data": part}
            for n, part in enumerate(parts)
        ]
        with self.errors("writing a document's text"):
            self.client.delete(
                self.names.texts, filter=f"doc_id == {int(doc_id)} and part >= {len(parts)}"
            )
            for row in rows:
                self.client.upsert(self.names.texts, [{**row, "unused": UNUSED}])
        return len(parts)

    def text(self, doc_id: int, parts: int) -> str | None:
        ids = [int_id("text", doc_id, n) for n in range(parts)]
        with self.errors("reading a document's text"):
            rows = self.client.get(self.names.texts, ids=ids, output_fields=["part", "data"])
        if len(rows) != parts:
            return None
        return "".join(str(r["data"]) for r in sorted(rows, key=lambda r: int(r["part"])))

    def flush(self) -> None:
        with self.errors("flushing"):
            for name in self.names.all():
                self.client.flush(name)

    def _query(self, name: str, condition: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row matching ``condition``: one query, or (past the 16,384 rows one query may
        return) an iterator reading them in pages."""
        first = self.client.query(
            name, filter=condition, output_fields=list(fields), limit=MAX_TOPK
        )
        if len(first) < MAX_TOPK:
            return list(first)
        out: list[dict[str, Any]] = []
        iterator = self.client.query_iterator(
            name, batch_size=1000, filter=condition, output_fields=list(fields)
        )
        try:
            while True:
                page = iterator.next()
                if not page:
                    return out
                out += page
        finally:
            iterator.close()
