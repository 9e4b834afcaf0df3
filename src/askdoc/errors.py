"""Errors a user can act on. Only the faces (``cli/``, ``evaluation/cli.py``, ``tui/``) turn them
into exits or messages."""

from __future__ import annotations


class AskdocError(Exception):
    """Base class: every message is one line, written for the person running askdoc."""


class ConfigError(AskdocError):
    """A setting in askdoc.toml, the environment or the command line is invalid."""


class CorpusError(AskdocError):
    """The corpus folder is missing, empty or not a folder."""


class NoIndexError(AskdocError):
    """There is no index yet at the configured location."""


class IndexMismatchError(AskdocError):
    """The index was built with another model, format or chunking settings."""


class IndexCorruptError(AskdocError):
    """A file in the index is damaged (failed checksum or unreadable)."""


class IndexWriteError(AskdocError):
    """The index folder cannot be written (disk full, read-only, no permission, a damaged lock)."""


class IndexBusyError(AskdocError):
    """Another process is already building this index."""


class ModelError(AskdocError):
    """The embedding model is missing or cannot be loaded."""


class BuildStopped(AskdocError):
    """A build was asked to stop (Ctrl+C while watching) before it published: nothing changed."""


class ReadError(AskdocError):
    """One document could not be read; the build skips it and goes on."""


class QuestionError(AskdocError):
    """The question has nothing in it to search for."""


class EvalError(AskdocError):
    """An evaluation file or benchmark folder cannot be used."""


class TransientReadError(ReadError):
    """One file could not be opened or read just then (moved, replaced, unreadable): unlike other
    read errors, which depend on the file's content, it is not remembered and every build tries
    the file again."""


class OnnxError(ModelError):
    """The model's ONNX export can be neither found nor made; torch is used instead."""


class LLMError(AskdocError):
    """The language model server cannot be reached or fails; askdoc answers without it."""


class StoreError(AskdocError):
    """The Milvus store cannot be used: its package is missing, the server cannot be reached, or
    Milvus refused a request."""
