"""The FAISS side of an index: build, write, load and check the vector index derived from the
stored vectors. The only module that imports faiss (lazily).

An approximate generation's FAISS file is ``vectors-<generation>.faiss``: written to a temporary
file, fsync'd, renamed, its sha256 recorded in the manifest; read back only after that checksum
matches, so a damaged file is never handed to FAISS. A flat generation has no file (format 4):
its exact index is built from the stored vectors when it is opened, checked against their
digest (``flat_from_rows``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from askdoc.errors import IndexCorruptError
from askdoc.index import schema
from askdoc.index.manifest import Manifest

FAISS_PREFIX = "vectors-"
FAISS_SUFFIX = ".faiss"


def faiss_name(generation: int) -> str:
    """The FAISS file of a generation: ``vectors-00000007.faiss``."""
    return f"{FAISS_PREFIX}{generation:08d}{FAISS_SUFFIX}"


def build_faiss(
    rows: Iterable[tuple[int, bytes]], dim: int, kind: str
) -> Any:  # faiss.Index; typed Any as faiss has no stubs
    """A FAISS index over (chunk id, vector bytes) rows; its ids are the chunk ids (IndexIDMap2).

    ``kind`` "flat" is exact search (IndexFlatIP). Any other kind ("ivf", or "hnsw", the name
    commit_generation used for "approximate") builds the index chosen by measurement on real
    embeddings (docs/performance.md): IVF with 8-bit scalar quantization, a quarter of flat's
    memory, recall@10 >= 0.95 against exact search up to 1M vectors. Its coarse quantizer must be
    trained on a *uniform* sample of the vectors (rows arrive in document order; training on the
    first ones cost 0.33 recall@10 at 1M), so the rows are spilled to an unlinked temporary file
    and added back in batches: the vectors are never all in memory. nprobe is saved in the file.
    """
    import tempfile

    import faiss

    faiss.omp_set_num_threads(1)
    batch, width = 8192, dim * 4

    def matrix_of(data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.float32).reshape(-1, dim)

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ids: list[int] = []
        blobs: list[bytes] = []
        for chunk_id, blob in rows:
            if len(blob) != width:
                raise IndexCorruptError(
                    f"vector of chunk {chunk_id} has {len(blob)} bytes, not {width}"
                )
            ids.append(chunk_id)
            blobs.append(blob)
            if len(ids) >= batch:
                yield np.asarray(ids, dtype=np.int64), matrix_of(b"".join(blobs))
                ids.clear()
                blobs.clear()
        if ids:
            yield np.asarray(ids, dtype=np.int64), matrix_of(b"".join(blobs))

    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "flat":
        for ids, matrix in batches():
            flat.add_with_ids(matrix, ids)
        return flat
    with tempfile.TemporaryFile(prefix="askdoc-vectors-") as spill:
        id_parts = []
        for ids, matrix in batches():
            spill.write(matrix.tobytes())
            id_parts.append(ids)
        if not id_parts:
            return flat
        spill.flush()
        all_ids = np.concatenate(id_parts)
        count = len(all_ids)

        def read(begin: int, end: int) -> np.ndarray:
            return matrix_of(os.pread(spill.fileno(), (end - begin) * width, begin * width))

        nlist, nprobe, train_size = ivf_layout(count)
        sample = np.random.default_rng(0).choice(count, train_size, replace=False)
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim),
            dim,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        ivf.cp.min_points_per_centroid = 1  # tiny indexes: no "please provide" warning
        ivf.train(np.vstack([read(int(i), int(i) + 1) for i in np.sort(sample)]))
        ivf.nprobe = nprobe
        index = faiss.IndexIDMap2(ivf)
        for begin in range(0, count, batch):
            end = min(count, begin + batch)
            index.add_with_ids(read(begin, end), all_ids[begin:end])
    return index


def ivf_layout(count: int) -> tuple[int, int, int]:
    """(nlist, nprobe, training sample size) of the approximate index for ``count`` vectors,
    set from measurements on real embeddings (docs/performance.md): about sqrt(count) lists (a
    power of two), 1/16 of them probed but at least 32, and 50 training vectors per list."""
    import math

    nlist = 1 << max(0, round(math.log2(max(1.0, math.sqrt(count)))))
    return nlist, min(nlist, max(32, nlist // 16)), min(count, 50 * nlist)


def write_faiss_file(index: Any, directory: Path, name: str) -> str:
    """Write atomically (temp file, fsync, rename, fsync dir); return the file's sha256.
    Streamed to disk while hashing: no second in-memory copy of the vectors."""
    import faiss

    tmp = directory / f".{name}.tmp-{os.getpid()}"
    digest = hashlib.sha256()
    with tmp.open("wb") as handle:

        def write(block: bytes) -> None:
            digest.update(block)
            handle.write(block)

        writer = faiss.PyCallbackIOWriter(write)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        del writer  # flushes the last block
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / name)
    fsync_dir(directory)
    return digest.hexdigest()


def load_faiss_file(path: Path, expected_sha256: str) -> Any:
    """Read, verify the checksum, then deserialize: a damaged file is never handed to FAISS.
    Only a regular file is read (a link or FIFO planted in its place is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IndexCorruptError(f"{path}: not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise IndexCorruptError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise IndexCorruptError(f"{path}: checksum mismatch (the file is damaged)")
    import faiss

    try:
        return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexCorruptError(f"{path}: unreadable FAISS file ({exc})") from None


def valid_faiss_name(name: str) -> bool:
    """A FAISS file name the manifest may name: ``vectors-<generation>.faiss``, no folders."""
    middle = name[len(FAISS_PREFIX) : -len(FAISS_SUFFIX)]
    return name.startswith(FAISS_PREFIX) and name.endswith(FAISS_SUFFIX) and middle.isdigit()


def faiss_ids(index: Any) -> np.ndarray:
    """The passage ids a FAISS index holds, sorted."""
    import faiss

    return np.sort(faiss.vector_to_array(index.id_map))


def in_memory(manifest: Manifest) -> bool:
    """A flat generation keeps no FAISS file: its exact index is built from the stored vectors
    (one copy of each vector on disk; format 4). Its faiss_sha256 is ``rows_digest`` of them."""
    return manifest.faiss_kind == "flat" and manifest.faiss_file == ""


def rows_digest(rows: Iterable[tuple[int, bytes]], digest: Any) -> Iterator[tuple[int, bytes]]:
    """Pass (chunk id, vector) rows through, feeding each to the hashlib object ``digest``."""
    for chunk_id, blob in rows:
        digest.update(int(chunk_id).to_bytes(8, "little", signed=True))
        digest.update(blob)
        yield chunk_id, blob


def flat_from_rows(conn: sqlite3.Connection, dim: int) -> tuple[Any, str]:
    """The exact index of a flat generation, built from the vectors the connection's snapshot
    holds (~10 ms per 2,000 passages), and the sha256 of those rows to check against the
    manifest."""
    digest = hashlib.sha256()
    index = build_faiss(rows_digest(conn.execute(schema.FLAT_ROWS), digest), dim, "flat")
    return index, digest.hexdigest()


def faiss_file_ok(index_dir: Path, manifest: Manifest) -> bool:
    """Whether the generation's FAISS file is there, matches its checksum and FAISS reads it
    (always, for a flat generation, which has none)."""
    if in_memory(manifest):
        return True
    if not valid_faiss_name(manifest.faiss_file):
        return False
    try:
        load_faiss_file(index_dir / manifest.faiss_file, manifest.faiss_sha256)
    except (OSError, IndexCorruptError):
        return False
    return True


def faiss_file_intact(index_dir: Path, manifest: Manifest) -> bool:
    """Whether the generation's FAISS file is there with the sha256 the manifest records
    (always, for a flat generation): ``faiss_file_ok`` without deserializing, what a build checks
    (~0.09 s per 200,000 passages)."""
    if in_memory(manifest):
        return True
    path = index_dir / manifest.faiss_file
    try:
        return valid_faiss_name(manifest.faiss_file) and (
            stat.S_ISREG(path.lstat().st_mode) and sha256_file(path) == manifest.faiss_sha256
        )
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes (a FAISS file, as the manifest records it)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
