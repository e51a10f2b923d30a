"""BM25 over the committed chunks, built once per index generation and cached on disk.

rank_bm25 fits the model (idf, lengths). LangChain's BM25Retriever wraps the same library but returns
documents without their scores, and the UI shows every hit's keyword score, so we call rank_bm25
directly. Its `get_scores` loops over every document for every query term in Python (~60 ms at 25k
chunks), so the fitted weights are laid out once as a sparse matrix and a query sums a few columns.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from qa.store import NotesIndex, alive_filter
from qa.text import name_vocabulary, tokenize

CACHE_VERSION = 7  # bump when tokenisation or the cached fields change


@dataclass
class KeywordIndex:
    """Committed chunks of one generation: their text, metadata, and a BM25 model over them."""

    generation: int
    ids: list[str]
    documents: list[str]
    metadatas: list[dict]
    weights: object | None = None  # scipy CSC matrix, chunks × terms: each term's BM25 score in each chunk
    vocabulary: dict[str, int] = field(default_factory=dict)  # term → column of `weights`
    doc_freq: dict[str, int] = field(default_factory=dict)  # term → chunks containing it
    sections: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, anchor) → raw Markdown
    names: set[str] = field(default_factory=set)  # tokens the notes write as names (see qa.text)
    # answer-unit text (notes.units.unit_embed_text) → its vector (float16), embedded by ingest
    unit_vectors: dict[str, object] = field(default_factory=dict)
    units: dict[str, tuple] = field(default_factory=dict)  # section Markdown → its answer units (notes.units)

    def units_of(self, section_text: str) -> tuple:
        """A section's answer units as ingest cut them (else cut now: an older or rebuilt snapshot)."""
        from notes.units import units_of

        found = self.units.get(section_text)
        return found if found is not None else units_of(section_text)

    @property
    def size(self) -> int:
        return len(self.ids)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (stemmed) term; unseen terms get the highest value."""
        if self.weights is None:
            return 0.0
        n = len(self.ids)
        df = self.doc_freq.get(term, 0)
        return math.log((n - df + 0.5) / (df + 0.5) + 1.0)

    def scores(self, terms: list[str]):
        """BM25Okapi score of every chunk for `terms` (a repeated term counts again, as in rank_bm25)."""
        import numpy as np

        columns = [self.vocabulary[t] for t in terms if t in self.vocabulary]
        if not columns:
            return np.zeros(len(self.ids))
        return np.asarray(self.weights[:, columns].sum(axis=1)).ravel()

    def search(self, query: str, *, k: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """(position, score) of the best `k` chunks with a positive score."""
        import numpy as np

        if self.weights is None:
            return []
        terms = tokenize(query)
        if not terms:
            return []
        scores = self.scores(terms)
        positions = np.asarray(allowed if allowed is not None else range(len(scores)), dtype=int)
        positions = positions[scores[positions] > 0]
        # Stable sort on -score keeps equal scores in index order, as the previous sorted() did.
        ranked = positions[np.argsort(-scores[positions], kind="stable")][:k]
        return [(int(p), float(scores[p])) for p in ranked]


def _indexed_text(document: str, metadata: dict) -> str:
    return f"{metadata.get('heading_path', '')}\n{document}"


def build_keyword_index(index: NotesIndex, generation: int) -> KeywordIndex:
    """Read the chunks alive in `generation` from Chroma and fit BM25 over heading path + text."""
    got = index.get_chunks(where=alive_filter(generation), include=("documents", "metadatas"))
    return fit_keyword_index(generation, got["ids"], got["documents"], got["metadatas"])


def fit_keyword_index(generation: int, ids: list[str], documents: list[str], metadatas: list[dict], *,
                      unit_vectors: dict | None = None, units: dict | None = None) -> KeywordIndex:
    """Fit BM25 over the given chunks (in note order, whatever order they come in)."""
    from rank_bm25 import BM25Okapi

    order = sorted(range(len(ids)), key=lambda i: (metadatas[i]["source"], metadatas[i]["start_line"],
                                                   metadatas[i]["ordinal"]))
    ids = [ids[i] for i in order]
    documents = [documents[i] for i in order]
    metadatas = [metadatas[i] for i in order]
    sections = {(m["source"], m["anchor"]): m["section_text"] for m in metadatas if "section_text" in m}
    weights, vocabulary, doc_freq = None, {}, {}
    if ids:
        bm25 = BM25Okapi([tokenize(_indexed_text(d, m)) for d, m in zip(documents, metadatas)])
        weights, vocabulary, doc_freq = bm25_matrix(bm25)
    names = name_vocabulary(list(sections.values()) + [m.get("heading_path", "") for m in metadatas])
    return KeywordIndex(generation, ids, documents, metadatas, weights, vocabulary, doc_freq, sections, names,
                        unit_vectors or {}, units or {})


def bm25_matrix(bm25) -> tuple[object, dict[str, int], dict[str, int]]:
    """A fitted BM25Okapi as (chunks × terms CSC matrix of scores, term → column, term → chunk count)."""
    import numpy as np
    from scipy.sparse import csc_matrix

    vocabulary: dict[str, int] = {}
    doc_freq: dict[str, int] = {}
    rows, cols, data = [], [], []
    for row, (freqs, length) in enumerate(zip(bm25.doc_freqs, bm25.doc_len)):
        norm = bm25.k1 * (1 - bm25.b + bm25.b * length / bm25.avgdl)
        for term, tf in freqs.items():
            col = vocabulary.setdefault(term, len(vocabulary))
            doc_freq[term] = doc_freq.get(term, 0) + 1
            rows.append(row)
            cols.append(col)
            data.append(bm25.idf.get(term, 0.0) * tf * (bm25.k1 + 1) / (tf + norm))
    matrix = csc_matrix((np.asarray(data, dtype=np.float64), (rows, cols)),
                        shape=(len(bm25.doc_freqs), len(vocabulary)))
    return matrix, vocabulary, doc_freq


def _cached_generation(path: Path) -> int:
    try:
        return int(path.stem.split("-")[-2])
    except (IndexError, ValueError):
        return -1


def cached_keyword_index(index: NotesIndex, generation: int, *, cache_dir: Path | None) -> KeywordIndex | None:
    """The keyword index of `generation` as cached on disk, or None."""
    if cache_dir is None:
        return None
    path = _cache_path(index, generation, cache_dir)
    try:
        with path.open("rb") as handle:
            cached = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return None  # absent, torn or stale: the caller rebuilds it
    return cached if isinstance(cached, KeywordIndex) and cached.generation == generation else None


def load_keyword_index(index: NotesIndex, generation: int, *, cache_dir: Path | None) -> KeywordIndex:
    """The cached keyword index for `generation`, building (and caching) it when absent."""
    cached = cached_keyword_index(index, generation, cache_dir=cache_dir)
    if cached is not None:
        return cached
    keyword = build_keyword_index(index, generation)
    if cache_dir is not None:
        save_keyword_index(keyword, index, cache_dir=cache_dir)
    return keyword


def _cache_path(index: NotesIndex, generation: int, cache_dir: Path) -> Path:
    # The collection id changes when an index is rebuilt, so a cache kept outside the index (server
    # mode) never serves a generation number of the collection it replaced.
    return cache_dir / f"keyword-{index.name}-{str(index.collection.id)[:8]}-{generation}-v{CACHE_VERSION}.pkl"


def save_keyword_index(keyword: KeywordIndex, index: NotesIndex, *, cache_dir: Path) -> None:
    """Write the cache file readers of `keyword.generation` load; drop older generations' files."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob(f"keyword-{index.name}-*.pkl"):
            if _cached_generation(old) < keyword.generation:  # a newer one may be ingest's, for its commit
                old.unlink(missing_ok=True)
        path = _cache_path(index, keyword.generation, cache_dir)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            pickle.dump(keyword, handle)
        tmp.replace(path)
    except OSError:
        pass  # caching is an optimisation; a read-only folder still answers
