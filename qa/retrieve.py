"""Hybrid retrieval: dense (Chroma) + keyword (BM25) chunks, fused by reciprocal rank, per section.

The fusion is written out (a few lines) rather than LangChain's EnsembleRetriever because the UI
and the eval need each hit's dense score, keyword score and fused rank, which the ensemble drops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from notes.model import HEADING_PATH_SEPARATOR, TAG_SEPARATOR, SectionAddress
from qa.embeddings import EmbeddingModel
from qa.keyword import KeywordIndex, load_keyword_index
from qa.errors import IndexMissing, NotesQAError, StoreUnavailable
from qa.store import NotesIndex, alive_filter, client_epoch, explain_failure, folder_stamp, is_alive

DEFAULT_K = 5
DEFAULT_CANDIDATES = 30
DENSE_SPARE_FACTOR = 2  # dense results asked for per result kept, so dead chunks can be dropped (see _dense)
# Sections are ranked by each retriever (by their best chunk), then fused by weighted reciprocal rank.
RRF_K = 5
# The keyword ranking's weight against the dense one's (1.0): fitted with the answer model on the tune halves
# of the evaluation corpora (python -m eval.fit) and set by NotesQA; this is the value before any fit.
DENSE_WEIGHT, KEYWORD_WEIGHT = 1.0, 0.5


@dataclass
class ChunkHit:
    """One chunk with how each retriever ranked it (None when that retriever did not return it)."""

    id: str
    text: str
    metadata: dict
    dense_score: float | None = None
    dense_rank: int | None = None
    keyword_score: float | None = None
    keyword_rank: int | None = None
    fused: float = 0.0


@dataclass
class SectionHit(SectionAddress):
    """A section of the notes, scored by its best chunk."""

    source: str
    anchor: str
    heading: str
    heading_path: tuple[str, ...]
    start_line: int
    end_line: int
    text: str  # the section's raw Markdown as indexed
    fused: float
    dense_score: float | None
    keyword_score: float | None
    rank: int = 0
    chunks: list[ChunkHit] = field(default_factory=list)
    title: str = ""  # the note's title (front matter, else its file name)
    tags: tuple[str, ...] = ()


@dataclass
class Retrieval:
    """What was searched and what came back, best section first."""

    query: str
    sections: list[SectionHit]
    generation: int
    query_vector: list[float] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    keyword: KeywordIndex | None = field(default=None, repr=False)  # the snapshot searched


def fuse_ranks(rankings: list[list], weights: list[float] | None = None, *, k: int = RRF_K) -> dict:
    """Weighted reciprocal rank fusion (Cormack et al. 2009): Σ w / (k + rank) over the rankings."""
    fused: dict = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def _section_order(chunk_ids: list[str], hits: dict) -> list[tuple[str, str]]:
    """Sections in the order their best chunk appears."""
    return list(dict.fromkeys((hits[c].metadata["source"], hits[c].metadata["anchor"]) for c in chunk_ids))


def chunk_tags(metadata: dict) -> tuple[str, ...]:
    return tuple(t for t in str(metadata.get("tags") or "").split(TAG_SEPARATOR) if t)


def _in_scope(metadata: dict, source: str | None, under: str | None, tags: tuple[str, ...] = ()) -> bool:
    if source and metadata.get("source") != source:
        return False
    if tags and not set(tags) & set(chunk_tags(metadata)):
        return False
    if under:
        anchors = str(metadata.get("anchor_path", "")).split(HEADING_PATH_SEPARATOR)
        headings = str(metadata.get("heading_path", "")).split(HEADING_PATH_SEPARATOR)
        if under not in anchors and under not in headings:
            return False
    return True


def _max(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


class Retriever:
    """Searches one index; reloads its keyword index when ingest commits a new generation."""

    def __init__(self, index: NotesIndex, model: EmbeddingModel, *, cache_dir=None, reopen=None):
        self.index = index
        self.model = model
        self.cache_dir = cache_dir
        # Chroma's embedded client caches vector segments per process: after another process commits,
        # its view is stale ("Error finding id"). `reopen` gives a fresh client and collection.
        self.reopen = reopen
        self.keyword_weight = KEYWORD_WEIGHT
        self._keyword: KeywordIndex | None = None
        self._lock = threading.Lock()

    def committed_generation(self) -> int:
        """The generation readers should see now; reopens the index when it was replaced or rebuilt."""
        settings = self.index.settings
        if self.index.stamp is not None:
            stamp = folder_stamp(settings)
            if stamp is None:
                raise IndexMissing(f"The index folder {settings.chroma_dir} was deleted or moved; rebuild it with: "
                                   f"python -m ingest --rebuild")
            if stamp != self.index.stamp:  # a new folder: nothing cached from the old one is valid
                self._reopen_index(forget_keyword=True)
            elif self.index.epoch != client_epoch() and self.reopen is not None:
                # Another service of this process reread the folder, and ingest writes through its client:
                # join it, or what is deleted or added through it stays invisible to this client's vectors.
                self._reopen_index(fresh=False)
        try:
            return self.index.read_state().generation
        except Exception as exc:
            first = exc
        # A server restarted, or a collection dropped by `--rebuild`: one fresh connection, then give up.
        try:
            self._reopen_index()
            return self.index.read_state().generation
        except NotesQAError:
            raise
        except Exception:
            raise explain_failure(settings, first) from first

    def _reopen_index(self, *, forget_keyword: bool = False, fresh: bool = True) -> None:
        with self._lock:
            self._reopen_locked(forget_keyword=forget_keyword, fresh=fresh)

    def _reopen_locked(self, *, forget_keyword: bool = False, fresh: bool = True) -> None:
        """A new client and collection (the caller holds `_lock`); `fresh` rereads the folder from disk."""
        if self.reopen is None:
            raise StoreUnavailable(f"The index in the {self.index.settings.index_location} changed; restart the app.")
        self.index = self.reopen(fresh=fresh)
        if forget_keyword:
            self._keyword = None

    def keyword_index(self) -> KeywordIndex:
        """The keyword index of the committed generation (rebuilt only when ingest committed anew)."""
        generation = self.committed_generation()
        if generation == 0:
            raise IndexMissing(
                f"The index in the {self.index.settings.index_location} is empty; build it with: python -m ingest"
            )
        with self._lock:
            if self._keyword is None or self._keyword.generation != generation:
                if self._keyword is not None and self.reopen is not None:
                    self._reopen_locked()
                    generation = self.index.read_state().generation
                self._keyword = load_keyword_index(self.index, generation, cache_dir=self.cache_dir)
            if self._keyword.size == 0:
                notes = self.index.read_state().notes_dir or "the notes folder"
                raise IndexMissing(f"The index holds no notes: add Markdown or .txt files to {notes}, then run: "
                                   f"python -m ingest")
            return self._keyword

    def search(self, query: str, *, k: int = DEFAULT_K, source: str | None = None, under: str | None = None,
               tags: tuple[str, ...] = (), candidates: int = DEFAULT_CANDIDATES,
               keyword: KeywordIndex | None = None, exclude: frozenset[str] = frozenset()) -> Retrieval:
        """The best `k` sections for `query`, optionally within one note (`source`), a subtree (`under`) or
        the notes carrying any of `tags`. Sections named in `exclude` (`source#anchor`) are left out (the
        answer model is fitted on questions whose answer was taken away this way)."""
        started = time.perf_counter()
        keyword = keyword or self.keyword_index()
        generation = keyword.generation
        def in_scope(md: dict) -> bool:
            return _in_scope(md, source, under, tags) and f"{md['source']}#{md['anchor']}" not in exclude

        scoped = source or under or tags or exclude
        allowed = [i for i, m in enumerate(keyword.metadatas) if in_scope(m)] if scoped else None
        t0 = time.perf_counter()
        vector = self.model.embed_query(query)
        t1 = time.perf_counter()
        n_dense = min(max(candidates * (3 if under or tags or exclude else 1), k), max(keyword.size, 1))
        try:
            result = self._dense(vector, n_dense, generation, source)
        except NotesQAError:
            raise
        except Exception as exc:
            raise explain_failure(self.index.settings, exc) from exc
        t2 = time.perf_counter()
        hits: dict[str, ChunkHit] = {}
        dense_order = []
        for cid, doc, md, dist in zip(result["ids"][0], result["documents"][0], result["metadatas"][0],
                                      result["distances"][0]):
            if not in_scope(md):
                continue
            dense_order.append(cid)
            hits[cid] = ChunkHit(cid, doc, md, dense_score=1.0 - float(dist), dense_rank=len(dense_order))
        keyword_order = []
        for pos, score in keyword.search(query, k=candidates, allowed=allowed):
            cid = keyword.ids[pos]
            keyword_order.append(cid)
            hit = hits.setdefault(cid, ChunkHit(cid, keyword.documents[pos], keyword.metadatas[pos]))
            hit.keyword_score, hit.keyword_rank = score, len(keyword_order)
        weights = [DENSE_WEIGHT, self.keyword_weight]
        for cid, value in fuse_ranks([dense_order, keyword_order], weights).items():
            hits[cid].fused = value
        section_scores = fuse_ranks([_section_order(dense_order, hits), _section_order(keyword_order, hits)],
                                    weights)
        t3 = time.perf_counter()
        sections = self._group(hits.values(), keyword, section_scores)[:k]
        return Retrieval(query, sections, generation, vector, timings_ms={
            "embed": (t1 - t0) * 1000, "dense": (t2 - t1) * 1000, "keyword": (t3 - t2) * 1000,
            "retrieve": (time.perf_counter() - started) * 1000,
        }, keyword=keyword)

    def _dense(self, vector, n_results: int, generation: int, source: str | None) -> dict:
        """The `n_results` chunks alive in `generation` nearest to `vector`.

        Chroma evaluates a `where` over every stored chunk before its vector search (199 ms at 21k
        chunks vs 6 ms without, measured). Usually nearly all stored chunks are alive, so we ask for
        spare results and drop the dead ones here; the filtered query is kept for the rare case where
        too many nearest chunks were dead (retired within the grace period, or left by a killed ingest),
        and for a search within one note, where most neighbours are out of scope.
        """
        where = alive_filter(generation)
        if source:
            result = self._query(vector, n_results, {"$and": where["$and"] + [{"source": source}]})
        else:
            asked = n_results * DENSE_SPARE_FACTOR
            result = self._query(vector, asked, None)
            if sum(md is not None and is_alive(md, generation) for md in result["metadatas"][0]) < n_results \
                    and len(result["ids"][0]) == asked:
                result = self._query(vector, n_results, where)
        # A neighbour without a record (deleted since this client loaded its vectors) is dead too.
        keep = [i for i, md in enumerate(result["metadatas"][0]) if md is not None and is_alive(md, generation)]
        return {key: [[result[key][0][i] for i in keep[:n_results]]] for key in ("ids", "documents", "metadatas",
                                                                                  "distances")}

    def _query(self, vector, n_results: int, where: dict | None) -> dict:
        """One dense query; on an error, or neighbours whose records are gone (a client whose vector index
        missed deletions made through another), reopen the client once and ask again."""
        def run(index):
            return index.collection.query(query_embeddings=[vector], n_results=n_results, where=where,
                                          include=["documents", "metadatas", "distances"])
        try:
            result = run(self.index)
            if self.reopen is None or all(md is not None for md in result["metadatas"][0]):
                return result
        except Exception:
            if self.reopen is None:
                raise
        with self._lock:
            self._reopen_locked()
        return run(self.index)

    @staticmethod
    def _group(hits, keyword: KeywordIndex, section_scores: dict) -> list[SectionHit]:
        by_section: dict[tuple[str, str], SectionHit] = {}
        for hit in sorted(hits, key=lambda h: -h.fused):
            md = hit.metadata
            key = (md["source"], md["anchor"])
            section = by_section.get(key)
            if section is None:
                section = by_section[key] = SectionHit(
                    source=md["source"], anchor=md["anchor"], heading=md["heading"],
                    heading_path=tuple(str(md["heading_path"]).split(HEADING_PATH_SEPARATOR)),
                    start_line=int(md["start_line"]), end_line=int(md["end_line"]),
                    text=keyword.sections.get(key, hit.text), fused=section_scores[key],
                    dense_score=hit.dense_score, keyword_score=hit.keyword_score,
                    title=str(md.get("title") or ""), tags=chunk_tags(md),
                )
            else:
                section.dense_score = _max(section.dense_score, hit.dense_score)
                section.keyword_score = _max(section.keyword_score, hit.keyword_score)
            section.chunks.append(hit)
        ranked = sorted(by_section.values(), key=lambda s: -s.fused)
        for rank, section in enumerate(ranked, start=1):
            section.rank = rank
        return ranked


