"""``askdoc verify`` for an index in Milvus: every row checked, nothing written.

The manifest's checksum, format and counts; every passage's checksum, model and document; every
document's passages and text (against its sha256). A problem is one line; a damaged index is
rebuilt with ``askdoc index --full``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from askdoc.config import Settings
from askdoc.errors import AskdocError, NoIndexError
from askdoc.index.manifest import FORMAT_VERSION
from askdoc.index.milvus_reader import connect, read_manifest
from askdoc.index.milvus_schema import PASSAGE_FIELDS, MilvusIndex, passage_row_sha256

MAX_LISTED = 5
"""Damaged rows named one by one before the rest are counted."""


def verify_milvus(settings: Settings) -> list[str]:
    """Every problem found, one line each (an empty list: the index is sound)."""
    try:
        index = connect(settings)
    except NoIndexError:
        return ["there is no index here yet: run `askdoc index`"]
    try:
        if not index.exists():
            return ["there is no index here yet: run `askdoc index`"]
        try:
            return _problems(index)
        except AskdocError as exc:
            return [str(exc)]
    finally:
        index.close()


def _problems(index: MilvusIndex) -> list[str]:
    manifest = read_manifest(index)
    if manifest is None:
        return ["no build has finished yet: run `askdoc index`"]
    problems: list[str] = []
    if manifest.format_version != FORMAT_VERSION:
        problems.append(
            f"index format {manifest.format_version}, this askdoc reads {FORMAT_VERSION}"
        )
    if index.meta(["state"]).get("state") != "ready":
        problems.append("the last build did not finish: run `askdoc index` to complete it")
    dimension = index.dimension()
    if dimension != int(manifest.model.get("dimension", 0)):
        problems.append(
            f"vectors have {dimension} dimensions, the manifest's model {manifest.model}"
        )
    model_key = hashlib.sha256(json.dumps(manifest.model, sort_keys=True).encode()).hexdigest()
    documents = {int(row["doc_id"]): row for row in index.document_rows()}
    damaged: list[str] = []
    per_doc: Counter[int] = Counter()
    total = 0
    for row in index.all_rows(index.names.passages, [*PASSAGE_FIELDS, "model"]):
        total += 1
        per_doc[int(row["doc_id"])] += 1
        if passage_row_sha256(row) != row.get("row_sha256"):
            damaged.append(f"passage {row['id']} fails its checksum")
        elif row.get("model") != model_key:
            damaged.append(f"passage {row['id']} was embedded with another model")
        elif int(row["doc_id"]) not in documents:
            damaged.append(f"passage {row['id']} belongs to no document ({row['path']!r})")
    for doc_id, doc in documents.items():
        if per_doc[doc_id] != int(doc["passages"]):
            damaged.append(
                f"{doc['path']!r} has {per_doc[doc_id]} passages, its record says {doc['passages']}"
            )
        data = index.text(doc_id, int(doc["parts"]))
        if data is None or hashlib.sha256(data.encode("ascii")).hexdigest() != doc.get(
            "content_sha256"
        ):
            damaged.append(f"the text of {doc['path']!r} is missing or damaged")
    problems += damaged[:MAX_LISTED]
    if len(damaged) > MAX_LISTED:
        problems.append(f"... and {len(damaged) - MAX_LISTED} more damaged rows")
    if total != manifest.chunks or len(documents) != manifest.documents:
        problems.append(
            f"{total} passages and {len(documents)} documents stored, the manifest records "
            f"{manifest.chunks} and {manifest.documents}"
        )
    if problems:
        problems.append("rebuild with `askdoc index --full`")
    return problems
