"""BM25 over the committed chunks, built once per index generation and cached on disk.

rank_bm25 does the scoring. LangChain's BM25Retriever wraps the same library but returns documents
without their scores, and the UI shows every hit's keyword score, so we call rank_bm25 directly.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from qa.store import NotesIndex, alive_filter
from qa.text import name_vocabulary, tokenize

CACHE_VERSION = 3  # bump when tokenisation or the cached fields change


@dataclass
class KeywordIndex:
    """Committed chunks of one generation: their text, metadata, and a BM25 model over them."""

    generation: int
    ids: list[str]
    documents: list[str]
    metadatas: list[dict]
    bm25: object | None = None
    sections: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, anchor) → raw Markdown
    names: set[str] = field(default_factory=set)  # tokens the notes write as names (see qa.text)

    @property
    def size(self) -> int:
        return len(self.ids)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (stemmed) term; unseen terms get the highest value."""
        if self.bm25 is None:
            return 0.0
        n = len(self.ids)
        df = self.bm25.doc_freqs_total.get(term, 0)
        return math.log((n - df + 0.5) / (df + 0.5) + 1.0)

    def search(self, query: str, *, k: int, allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """(position, score) of the best `k` chunks with a positive score."""
        if self.bm25 is None:
            return []
        terms = tokenize(query)
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        positions = allowed if allowed is not None else range(len(scores))
        ranked = sorted((p for p in positions if scores[p] > 0), key=lambda p: -scores[p])
        return [(p, float(scores[p])) for p in ranked[:k]]


def _indexed_text(document: str, metadata: dict) -> str:
    return f"{metadata.get('heading_path', '')}\n{document}"


def build_keyword_index(index: NotesIndex, generation: int) -> KeywordIndex:
    """Read the chunks alive in `generation` from Chroma and fit BM25 over heading path + text."""
    from rank_bm25 import BM25Okapi

    got = index.get_chunks(where=alive_filter(generation), include=("documents", "metadatas"))
    order = sorted(range(len(got["ids"])), key=lambda i: (got["metadatas"][i]["source"],
                                                            got["metadatas"][i]["start_line"],
                                                            got["metadatas"][i]["ordinal"]))
    ids = [got["ids"][i] for i in order]
    documents = [got["documents"][i] for i in order]
    metadatas = [got["metadatas"][i] for i in order]
    sections = {(m["source"], m["anchor"]): m["section_text"] for m in metadatas if "section_text" in m}
    bm25 = None
    if ids:
        bm25 = BM25Okapi([tokenize(_indexed_text(d, m)) for d, m in zip(documents, metadatas)])
        bm25.doc_freqs_total = {}
        for freqs in bm25.doc_freqs:
            for term in freqs:
                bm25.doc_freqs_total[term] = bm25.doc_freqs_total.get(term, 0) + 1
    names = name_vocabulary(list(sections.values()) + [m.get("heading_path", "") for m in metadatas])
    return KeywordIndex(generation, ids, documents, metadatas, bm25, sections, names)


def load_keyword_index(index: NotesIndex, generation: int, *, cache_dir: Path | None) -> KeywordIndex:
    """The cached keyword index for `generation`, building (and caching) it when absent."""
    path = None
    if cache_dir is not None:
        path = cache_dir / f"keyword-{index.name}-{generation}-v{CACHE_VERSION}.pkl"
        if path.exists():
            try:
                with path.open("rb") as handle:
                    cached = pickle.load(handle)
                if isinstance(cached, KeywordIndex) and cached.generation == generation:
                    return cached
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
                pass  # a torn or stale cache file is rebuilt below
    keyword = build_keyword_index(index, generation)
    if path is not None:
        try:
            for old in cache_dir.glob(f"keyword-{index.name}-*.pkl"):
                old.unlink(missing_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as handle:
                pickle.dump(keyword, handle)
            tmp.replace(path)
        except OSError:
            pass  # caching is an optimisation; a read-only folder still answers
    return keyword
