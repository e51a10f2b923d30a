"""Extractive answers: rank the note's units against the question, decide whether the notes answer
it, and compose an answer that reads as one, every sentence quoted and cited.

1. Candidates: every unit (sentence, list item, list, table row) of the top retrieved sections, with
   the features of `qa.features` (similarity to the question, the section's retrieval scores, the
   share of the question's terms and names it holds, whether it gives the figure or list asked for…).
2. Ranking and the decision are the two logistic regressions of `qa/answer_model.json`, fitted by
   `python -m eval.fit` on the tune halves of three corpora. When the answer model says no, the
   answer says why: the feature that weighed most against answering, in words.
3. Composition: the best unit first; further units only from the same section (one paragraph,
   list or table in most notes; in short how-to sections, the next paragraph often holds the rest of
   the answer: measured, README), in the order of the note, while they score close to the best, hold
   some of the question's terms themselves, and the answer stays short (about 80 words, more for a
   list); a unit that opens with "This…", "It…", "When…" gets its subject in front
   (its bold label, the item it hangs from, or the heading); a comparison takes the best unit for
   each side. No unit is repeated or shown inside another.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from notes.model import section_url
from notes.units import Unit, unit_embed_text, units_of
from qa.answer_model import AnswerModel, load_answer_model
from qa.features import (ANAPHORIC_OPENER, Candidate, QuestionInfo, add_relative_features, answerable_features,
                         as_matrix, tokens_of, tokens_of_section, unit_features)
from qa.retrieve import Retrieval, SectionHit
from qa.text import gives_instructions

DEFAULT_MAX_SENTENCES = 4
DEFAULT_SECTIONS_CONSIDERED = 4
RETRIEVED_FOR_ANSWER = 8  # sections retrieved for an answer: the top few, and room for `considered_sections`
MAX_ANSWER_WORDS = 80
MAX_LIST_WORDS = 120
MIN_SENTENCE_WORDS = 4  # shorter units (not rows or lists) are fragments

NOT_COVERED = "Your notes don't cover this."


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


def candidates(info: QuestionInfo, retrieval: Retrieval, scorer: UnitScorer, *,
               sections_considered: int = DEFAULT_SECTIONS_CONSIDERED) -> list[Candidate]:
    """Every unit of the considered sections, with its features (not yet ranked)."""
    sections = considered_sections(retrieval, sections_considered)
    cut = retrieval.keyword.units_of if retrieval.keyword else units_of
    pairs = [(u, s, s.rank) for s in sections for u in cut(s.text)]
    if not pairs:
        return []
    stored = retrieval.keyword.unit_vectors if retrieval.keyword else None
    vectors = scorer.vectors([unit_embed_text(u, s.breadcrumb) for u, s, _ in pairs], stored)
    idf = functools.lru_cache(maxsize=None)(retrieval.keyword.idf)  # the question's few terms, asked per unit
    info.with_rare_terms(idf)
    # A follow-up is searched with the earlier subject; a unit that answers it matches both that subject
    # and what the follow-up itself asks (the two vectors averaged).
    asked = np.asarray(retrieval.query_vector, dtype=np.float32)
    if retrieval.query != info.text:
        asked = asked + scorer.question_vector(info.text)
        asked /= np.linalg.norm(asked)
    sims = vectors @ asked
    out = []
    for (unit, section, rank), sim in zip(pairs, sims):
        c = Candidate(unit, section, rank, float(sim))
        c.features = unit_features(info, c, idf)
        out.append(c)
    add_relative_features(out)
    return out


def rank_candidates(cands: list[Candidate], model: AnswerModel) -> list[Candidate]:
    """The candidates scored by the fitted ranker, best first."""
    if not cands:
        return []
    scores = model.ranker.score(as_matrix([c.features for c in cands], model.ranker.features))
    for c, score in zip(cands, scores):
        c.score = float(score)
    return sorted(cands, key=lambda c: -c.score)


def _reason(feature: str, info: QuestionInfo, present: frozenset[str], missing_names: list[str], idf) -> str:
    """The refusal in words, from the feature that weighed most against answering (`present`: the best
    section's tokens)."""
    if feature in ("names_missing_best", "names_missing_all") and missing_names:
        return "the notes do not mention " + ", ".join(missing_names) + " there"
    if feature in ("figure_without_number", "figure_none_in_top"):
        return "the question asks for a figure the closest passages do not give"
    if feature == "numbers_missing" and info.numbers:
        return "the notes do not mention " + ", ".join(sorted(info.numbers)) + " there"
    if feature in ("rare_missing_section", "rare_missing_unit"):
        missing = sorted((t for t in info.query_terms if t not in present), key=lambda t: -idf(t))
        if missing:
            return f"the closest passage does not mention “{missing[0]}”"
    if feature in ("kind_without_figure", "kind_none_in_top"):
        return "the question asks for a figure the closest passages do not give"
    return "no passage is close enough to the question"


def decide(info: QuestionInfo, ranked: list[Candidate], retrieval: Retrieval, model: AnswerModel, *,
           sections_considered: int = DEFAULT_SECTIONS_CONSIDERED) -> Decision:
    """Answer only when the fitted answer model says the best candidates answer the question."""
    if not ranked:
        return Decision(True, "nothing in the notes matched")
    keyword = retrieval.keyword
    features = answerable_features(info, ranked, considered_sections(retrieval, sections_considered), keyword.idf)
    x = as_matrix([features], model.answerable.features)
    logit = float(model.answerable.score(x)[0])
    best = ranked[0]
    coverage = features["section_terms"]
    if logit >= model.threshold:
        return Decision(False, "supported", best.similarity, coverage, [])
    contributions = model.answerable.contributions(x)[0]
    worst = model.answerable.features[int(np.argmin(contributions))]
    present = tokens_of_section(best.section)
    missing_names = [n for n in info.names if n not in present]
    return Decision(True, _reason(worst, info, present, missing_names, keyword.idf), best.similarity, coverage,
                    missing_names)


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
    """The best unit, then close runners-up from the same section, in the note's order."""
    if not ranked:
        return []
    usable = [c for c in ranked if not _fragment(c) and not gives_instructions(c.unit.text)] or ranked
    best = usable[0]
    if info.comparison:
        sides = [next((c for c in usable if _about(c, name)), None) for name in info.names[:2]]
        if all(sides) and not (_same_place(*sides) and _overlaps(sides[0].unit, sides[1].unit)):
            return sides
    budget = MAX_LIST_WORDS if info.list else MAX_ANSWER_WORDS
    chosen, words = [best], _words(best)
    for c in usable[1:]:
        if len(chosen) >= max_sentences or c.score < best.score - model.follow_margin:
            break
        if not _same_place(c, best) or words + _words(c) > budget or c.features["unit_terms"] < model.follow_terms:
            continue
        if any(_overlaps(c.unit, o.unit) for o in chosen):
            continue
        chosen.append(c)
        words += _words(c)
    return [best] + sorted(chosen[1:], key=lambda c: c.unit.order)


def _short(text: str, words: int = 8) -> str:
    text = text.strip().rstrip(":").strip()
    return text if 0 < len(text.split()) <= words else ""


def shown_text(c: Candidate, info: QuestionInfo | None = None) -> str:
    """A unit as an answer sentence: with its subject in front when it opens with "This…", "It…", "When…",
    and, in a comparison, when it does not name its side."""
    text = c.unit.text
    needs_subject = bool(ANAPHORIC_OPENER.match(text))
    if info is not None and info.comparison and not any(n in tokens_of(text) for n in info.names):
        needs_subject = True
    if not needs_subject:
        return text
    subject = _short(c.unit.label) or _short(c.unit.parent) or c.section.heading.rstrip(":")
    if subject and subject.lower() not in text.lower():
        return f"{subject}: {text}"
    return text


def compose_answer(question: str, retrieval: Retrieval, scorer: UnitScorer, *, model: AnswerModel | None = None,
                   sections_considered: int = DEFAULT_SECTIONS_CONSIDERED,
                   max_sentences: int = DEFAULT_MAX_SENTENCES) -> Answer:
    """The extractive answer for one retrieval: cited sentences, or a plain refusal that says why."""
    model = model or load_answer_model()
    info = question_info(question, retrieval)
    ranked = rank_candidates(candidates(info, retrieval, scorer, sections_considered=sections_considered), model)
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
