"""The index on disk: the one owner of its format.

``schema`` (the SQLite tables, connections, transactions, typed rows: the only module that
writes SQL) · ``vectors`` (the FAISS index derived from the stored vectors: the only faiss
import) · ``manifest`` (what an index was built with, checksummed) · ``integrity`` (per-row
checksums, SQLite errors as messages) · ``lock`` (the one-writer flock) · ``planning`` (what a
build does with each file) · ``pending`` (rows of a build in progress) · ``publish`` (a new
generation, in the writer's transaction) · ``writer`` (``IndexWriter``: one build) · ``reader``
(consistent snapshots, search) · ``verify`` and ``repair`` (``askdoc verify [--repair]``).

Import from the modules themselves: this package imports nothing, so that importing one of them
loads only what it needs.
"""
