"""Extractive answers: read the note's units against the question, decide whether the notes answer it,
and compose an answer that reads as one, every sentence quoted and cited.

1. Candidates: every answer unit (sentence, list item, list, table row, short command with its
   introduction) of the top retrieved sections; never a question the notes ask. A cheap score (the
   unit's similarity to the question, from vectors computed at ingest, and the question's words it
   holds) picks the few the reader reads.
2. The reader (qa/reader.py, a cross-encoder trained on SQuAD by `python -m eval.train_reader`) scores
   each of those: the log-odds that the unit answers the question.
3. The decision (qa/answer_model.json, fitted by `python -m eval.fit` on the tune halves) turns the
   reader's best scores and what the sections hold (the names and numbers the question mentions, the
   kind of figure it asks for) into answer or refuse; a refusal says why.
4. Composition: the best unit first; further units only from the same section, in the order of the
   note, while the reader scores them close to the best and the answer stays short (about 80 words,
   more for a list); a unit that opens with "This…", "It…", "When…" gets its subject in front (its bold
   label, the item it hangs from, or the heading); a comparison takes the best unit for each side. No
   unit is repeated or shown inside another.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from notes.model import section_url
from notes.units import Unit, unit_embed_text, units_of
from qa.answer_model import AnswerModel, load_answer_model
from qa.features import (ANAPHORIC_OPENER, Candidate, QuestionInfo, answerable_features, as_matrix, rank_features,
                         tokens_of, tokens_of_section, weighted_share)
from qa.reader import Reader, load_reader
from qa.retrieve import Retrieval, SectionHit
from qa.text import gives_instructions

DEFAULT_MAX_SENTENCES = 4
DEFAULT_SECTIONS_CONSIDERED = 4
RETRIEVED_FOR_ANSWER = 8  # sections retrieved for an answer: the top few, and room for `considered_sections`
MAX_ANSWER_WORDS = 80
MAX_LIST_WORDS = 120
MIN_SENTENCE_WORDS = 4  # shorter units (not rows or lists) are fragments
DEFAULT_READ = 12  # units the reader reads per question (the cheap score's best): ~10 ms each on 2 cores
CHEAP_TERMS_WEIGHT = 0.5  # the question's words held, against similarity, in the cheap score

NOT_COVERED = "Your notes don't cover this."
_ASKS = re.compile(r"\?(?:[\s:;]|$)")  # a sentence that asks: the notes' own questions are not answers


@dataclass
class Citation:
    """A numbered pointer from an answer sentence to the section (and exact text) it comes from."""

    n: int
    source: str
    anchor: str
    heading: str
    heading_path: list[str]
    quote: str
    title: str = ""  # the note's title

    @property
    def url(self) -> str:
        return section_url(self.source, self.anchor)

    def to_dict(self) -> dict:
        return {"n": self.n, "source": self.source, "anchor": self.anchor, "heading": self.heading,
                "heading_path": self.heading_path, "quote": self.quote, "url": self.url, "title": self.title}


@dataclass
class AnswerSentence:
    text: str
    citation: int | None
    supported: bool = True


@dataclass
class Decision:
    """Why the answer was given or withheld; shown in the UI's "what was searched"."""

    abstained: bool
    reason: str
    similarity: float = 0.0
    coverage: float = 0.0
    missing_terms: list[str] = field(default_factory=list)


@dataclass
class Answer:
    """What every front end shows: text with [n] markers, citations, and what was searched."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    sentences: list[AnswerSentence]
    retrieval: Retrieval | None
    decision: Decision | None = None
    mode: str = "extractive"
    notice: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def searched_query(self) -> str:
        return self.retrieval.query if self.retrieval else self.question

    def to_dict(self) -> dict:
        retrieved = []
        for s in self.retrieval.sections if self.retrieval else []:
            retrieved.append({
                "source": s.source, "anchor": s.anchor, "heading": s.heading, "title": s.title,
                "heading_path": list(s.heading_path), "url": s.url, "score": round(s.fused, 5),
                "dense_score": None if s.dense_score is None else round(s.dense_score, 4),
                "keyword_score": None if s.keyword_score is None else round(s.keyword_score, 4),
                "rank": s.rank,
            })
        return {
            "question": self.question, "answer": self.text, "abstained": self.abstained, "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [{"text": s.text, "citation": s.citation, "supported": s.supported}
                          for s in self.sentences],
            "retrieved": retrieved, "searched_query": self.searched_query, "notice": self.notice,
            "generation": self.retrieval.generation if self.retrieval else None,
            "decision": None if self.decision is None else {
                "reason": self.decision.reason, "similarity": round(self.decision.similarity, 4),
                "coverage": round(self.decision.coverage, 4), "missing_terms": self.decision.missing_terms},
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


class UnitScorer:
    """Answer-unit vectors: those ingest stored with the index generation, else embedded now (and kept
    by the model for the process: an index built before units were stored, or a server-mode reader
    that had to rebuild the keyword index itself)."""

    def __init__(self, model):
        self.model = model

    def vectors(self, texts: list[str], stored: dict | None = None) -> np.ndarray:
        stored = stored or {}
        missing = [t for t in texts if t not in stored]
        fresh = dict(zip(missing, self.model.embed_texts(missing))) if missing else {}
        if not texts:
            return np.zeros((0, self.model.dimension), dtype=np.float32)
        return np.stack([np.asarray(stored[t] if t in stored else fresh[t], dtype=np.float32) for t in texts])

    def question_vector(self, question: str) -> np.ndarray:
        return np.asarray(self.model.embed_query(question), dtype=np.float32)


def question_info(question: str, retrieval: Retrieval) -> QuestionInfo:
    return QuestionInfo.of(question, retrieval.query, retrieval.keyword.names if retrieval.keyword else set())


def considered_sections(retrieval: Retrieval, n: int = DEFAULT_SECTIONS_CONSIDERED) -> list[SectionHit]:
    """The top `n` fused sections, and the section the dense search liked best if fusion pushed it below
    them: a passage that says the same in other words has no keyword in common to be ranked by."""
    top = retrieval.sections[:n]
    dense = [s for s in retrieval.sections if s.dense_score is not None]
    best = max(dense, key=lambda s: s.dense_score, default=None)
    return top + [best] if best is not None and best not in top else top


def answer_unit(unit: Unit) -> bool:
    """A unit that can be an answer: not a question the notes ask, not an order to a language model."""
    return not _ASKS.search(unit.text) and not gives_instructions(unit.text)


def candidates(info: QuestionInfo, retrieval: Retrieval, scorer: UnitScorer, *,
               sections_considered: int = DEFAULT_SECTIONS_CONSIDERED) -> list[Candidate]:
    """Every answer unit of the considered sections, with its cheap scores (not yet read)."""
    sections = considered_sections(retrieval, sections_considered)
    cut = retrieval.keyword.units_of if retrieval.keyword else units_of
    pairs = [(u, s) for s in sections for u in cut(s.text) if answer_unit(u)]
    if not pairs:
        return []
    stored = retrieval.keyword.unit_vectors if retrieval.keyword else None
    passages = [unit_embed_text(u, s.breadcrumb) for u, s in pairs]
    vectors = scorer.vectors(passages, stored)
    idf = functools.lru_cache(maxsize=None)(retrieval.keyword.idf)  # the question's few terms, asked per unit
    # A follow-up is searched with the earlier subject; a unit that answers it matches both that subject
    # and what the follow-up itself asks (the two vectors averaged).
    asked = np.asarray(retrieval.query_vector, dtype=np.float32)
    if retrieval.query != info.text:
        asked = asked + scorer.question_vector(info.text)
        asked /= np.linalg.norm(asked)
    sims = vectors @ asked
    return [Candidate(unit, section, float(sim), weighted_share(info.query_terms, tokens_of(passage), idf),
                      passage=passage)
            for (unit, section), sim, passage in zip(pairs, sims, passages)]


def cheap_score(c: Candidate) -> float:
    """What chooses the units the reader reads: similarity to the question and the question's words held."""
    return c.similarity + CHEAP_TERMS_WEIGHT * c.terms


def read_candidates(info: QuestionInfo, cands: list[Candidate], reader: Reader, *, n: int = DEFAULT_READ
                    ) -> list[Candidate]:
    """The cheap score's best `n` candidates, read by the reader (`reader`), unranked, then the unread ones."""
    ordered = sorted(cands, key=lambda c: -cheap_score(c))
    read = ordered[:n]
    for c, score in zip(read, reader.score(info.query, [c.passage for c in read])):
        c.reader = float(score)
    return ordered


def rank_candidates(info: QuestionInfo, cands: list[Candidate], model: AnswerModel) -> list[Candidate]:
    """The read candidates ordered by the fitted ranker (or the reader alone), best first; unread ones after."""
    read = [c for c in cands if c.reader > float("-inf")]
    if model.ranker is None:
        for c in read:
            c.score = c.reader
    elif read:
        x = as_matrix([rank_features(info, c) for c in read], model.ranker.features)
        for c, score in zip(read, model.ranker.score(x)):
            c.score = float(score)
    return sorted(read, key=lambda c: -c.score) + [c for c in cands if c.reader == float("-inf")]


def _reason(info: QuestionInfo, features: dict[str, float], sections: list[SectionHit]) -> tuple[str, list[str]]:
    """The refusal in words (and the names the notes lack), from what the closest passages miss."""
    present = frozenset().union(*(tokens_of_section(s) for s in sections))
    missing = [n for n in info.names if n not in present]
    if missing:
        return "the notes do not mention " + ", ".join(missing), missing
    if features["numbers_missing"] and info.numbers:
        return "the notes do not mention " + ", ".join(sorted(info.numbers)) + " there", []
    if features["kind_missing"]:
        return "the question asks for a figure the closest passages do not give", []
    return "no passage of the notes answers it closely enough", []


def decide(info: QuestionInfo, ranked: list[Candidate], retrieval: Retrieval, model: AnswerModel, *,
           sections_considered: int = DEFAULT_SECTIONS_CONSIDERED) -> Decision:
    """Answer only when the fitted decision says the best read unit answers the question."""
    if not ranked or ranked[0].reader == float("-inf"):
        return Decision(True, "nothing in the notes matched")
    sections = considered_sections(retrieval, sections_considered)
    features = answerable_features(info, ranked, sections)
    logit = float(model.answerable.score(as_matrix([features], model.answerable.features))[0])
    best = ranked[0]
    if logit >= model.threshold:
        return Decision(False, "supported", best.similarity, best.terms, [])
    reason, missing = _reason(info, features, sections)
    return Decision(True, reason, best.similarity, best.terms, missing)


def _overlaps(a: Unit, b: Unit) -> bool:
    """Two units of one section that share any of the note's text (a sentence and its whole item…)."""
    return a.start < b.start + len(b.quote) and b.start < a.start + len(a.quote)


def _same_place(a: Candidate, b: Candidate) -> bool:
    return a.section.url == b.section.url


def _words(c: Candidate) -> int:
    return len(c.unit.text.split())


def _fragment(c: Candidate) -> bool:
    return c.unit.kind not in ("row", "list") and _words(c) < MIN_SENTENCE_WORDS


def _about(c: Candidate, name: str) -> bool:
    return name in tokens_of(f"{c.unit.text} {c.unit.context} {c.unit.label} {c.section.heading}")


def select(info: QuestionInfo, ranked: list[Candidate], model: AnswerModel, *,
           max_sentences: int = DEFAULT_MAX_SENTENCES) -> list[Candidate]:
    """The best read unit, then units of the same section the reader scores close to it, in the note's order."""
    read = [c for c in ranked if c.reader > float("-inf")]
    if not read:
        return []
    usable = [c for c in read if not _fragment(c)] or read
    best = usable[0]
    if info.comparison:
        floor = best.score - model.follow_margin
        sides = [next((c for c in usable if c.score >= floor and _about(c, name)), None) for name in info.names[:2]]
        if all(sides) and not (_same_place(*sides) and _overlaps(sides[0].unit, sides[1].unit)):
            return sides
    budget = MAX_LIST_WORDS if info.list else MAX_ANSWER_WORDS
    chosen, words = [best], _words(best)
    for c in usable[1:]:
        if len(chosen) >= max_sentences or c.score < best.score - model.follow_margin:
            break
        if c.reader < model.follow_floor or not _same_place(c, best) or words + _words(c) > budget:
            continue
        if any(_overlaps(c.unit, o.unit) or c.unit.text == o.unit.text for o in chosen):
            continue  # the same words twice (a note that repeats itself) read as one
        chosen.append(c)
        words += _words(c)
    return [best] + sorted(chosen[1:], key=lambda c: c.unit.order)


def _short(text: str, words: int = 8) -> str:
    """A label short enough to stand as a subject; never a question the notes ask ("Why use Helm?")."""
    text = text.strip().rstrip(":").strip()
    return text if 0 < len(text.split()) <= words and not text.endswith("?") else ""


def shown_text(c: Candidate, info: QuestionInfo | None = None) -> str:
    """A unit as an answer sentence: with its subject in front when it opens with "This…", "It…", "When…",
    and, in a comparison, when it does not name its side."""
    text = c.unit.text
    needs_subject = bool(ANAPHORIC_OPENER.match(text))
    if info is not None and info.comparison and not any(n in tokens_of(text) for n in info.names):
        needs_subject = True
    if not needs_subject:
        return text
    heading = c.section.heading.rstrip(":")
    subject = _short(c.unit.label) or _short(c.unit.parent) or ("" if heading.endswith("?") else heading)
    if subject and subject.lower() not in text.lower():
        return f"{subject}: {text}"
    return text


def compose_answer(question: str, retrieval: Retrieval, scorer: UnitScorer, *, model: AnswerModel | None = None,
                   reader: Reader | None = None, sections_considered: int = DEFAULT_SECTIONS_CONSIDERED,
                   max_sentences: int = DEFAULT_MAX_SENTENCES) -> Answer:
    """The extractive answer for one retrieval: cited sentences, or a plain refusal that says why."""
    model = model or load_answer_model()
    info = question_info(question, retrieval)
    cands = candidates(info, retrieval, scorer, sections_considered=sections_considered)
    ranked = rank_candidates(info, read_candidates(info, cands, reader or load_reader()), model)
    decision = decide(info, ranked, retrieval, model, sections_considered=sections_considered)
    if decision.abstained:
        return Answer(question, NOT_COVERED, True, [], [], retrieval, decision)
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for n, c in enumerate(select(info, ranked, model, max_sentences=max_sentences), start=1):
        s = c.section
        citations.append(Citation(n, s.source, s.anchor, s.heading, list(s.heading_path), c.unit.quote, s.title))
        sentences.append(AnswerSentence(shown_text(c, info), n))
    text = " ".join(f"{s.text} [{s.citation}]" for s in sentences)
    return Answer(question, text, False, citations, sentences, retrieval, decision)
