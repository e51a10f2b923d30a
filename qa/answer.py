"""Extractive answers: pick the note sentences that answer the question, cite each, or abstain.

How a unit (sentence, bullet or list) is scored against the question:
  score = W_DENSE · cosine(question, heading path + unit) + W_SECTION · the section's best dense score
          + W_LEXICAL · IDF-weighted share of the question's terms found in the unit or its heading path
          (+ a bonus when the question asks for a quantity and the unit has a number, or asks for a list
          and the unit is one).

How we decide to abstain (`decide_abstention`), in order:
  1. no unit is close in meaning to the question (best cosine < MIN_SIMILARITY) → abstain;
  2. unless the match is very close (cosine ≥ CONFIDENT_SIMILARITY):
     - the question names something (Aurora, SQS, CloudFront, "Express"…: a word written as a name, or
       one the notes always write as a name) that the best section never mentions → abstain;
     - the match is weak (cosine < WEAK_SIMILARITY) and the best sentence holds almost none of the
       question's terms (IDF-weighted share < MIN_BEST_LEXICAL) → abstain;
     - the question asks for a quantity (how long/many/much, maximum…) and the best sentence holds
       no number → abstain (the notes talk about the topic but do not give the figure).
A raw similarity threshold alone cannot separate "SQS message size" from "Lambda memory size":
both look alike to the embedding model; the name and quantity checks are what tell them apart.
Thresholds were chosen by a grid search on eval/questions.jsonl and checked on held-out halves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from notes.model import section_url
from notes.units import Unit, units_of
from qa.retrieve import Retrieval, SectionHit
from qa.text import content_terms, numbers_in, question_names, tokenize

DEFAULT_MAX_SENTENCES = 4
DEFAULT_SECTIONS_CONSIDERED = 4
# Weights fitted by a grid search on half of eval/questions.jsonl and checked on the other half.
W_DENSE, W_SECTION, W_LEXICAL = 1.0, 0.6, 0.2
QUANTITY_BONUS, LIST_BONUS, DEFINITION_BONUS = 0.10, 0.05, 0.10
# Further sentences must score within a margin of the best one (wider for list questions) and share
# some of the question's terms, so an answer stays short and each sentence earns its citation.
FOLLOW_MARGIN, LIST_FOLLOW_MARGIN = 0.12, 0.16
MIN_FOLLOW_LEXICAL = 0.2

# Abstention thresholds, calibrated on eval/questions.jsonl (see the module docstring).
MIN_SIMILARITY = 0.40  # below this no unit is about the question
CONFIDENT_SIMILARITY = 0.75  # at or above this, a missing name or number is taken to be paraphrase
WEAK_SIMILARITY, MIN_BEST_LEXICAL = 0.55, 0.2  # a weak match must share some terms with the question

_QUANTITY = re.compile(
    r"\b(how (long|many|much|big|large|fast|small|often)|max(imum)?|min(imum)?|limit|size|cost|price|"
    r"pric(e|ing)|retention|retain|duration|default|timeout|memory|ram|storage|capacity|days?|hours?|"
    r"minutes?|seconds?|percent|latency|up to)\b", re.I)
_ASKS_FIGURE = re.compile(
    r"\b(how (long|many|much|big|large)|max(imum)?|min(imum)?|what size|most|least)\b", re.I)
_LIST = re.compile(
    r"\b(which|what are|list|name( the| all)?|types|kinds|ways|options|use cases|languages|modes|methods|"
    r"steps|benefits|features|examples|integrations|services|formats|settings|reasons|advantages)\b", re.I)

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
class ScoredUnit:
    unit: Unit
    section: SectionHit
    similarity: float
    lexical: float
    score: float


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
            "decision": None if self.decision is None else {
                "reason": self.decision.reason, "similarity": round(self.decision.similarity, 4),
                "coverage": round(self.decision.coverage, 4), "missing_terms": self.decision.missing_terms},
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


class UnitScorer:
    """Embeds answer units for scoring against questions (the model caches them per process, by text)."""

    def __init__(self, model):
        self.model = model

    def vectors(self, texts: list[str]) -> np.ndarray:
        return self.model.embed_texts(texts)


def weighted_share(terms: list[str], found: set[str], idf) -> float:
    """IDF-weighted share of `terms` that occur in `found`."""
    total = sum(idf(t) for t in terms)
    return sum(idf(t) for t in terms if t in found) / total if total else 0.0


@lru_cache(maxsize=16384)
def _tokens_of(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def _unit_embed_text(unit: Unit, section: SectionHit) -> str:
    return f"{section.breadcrumb}: {unit.embed_text}"


_DEFINITION_Q = re.compile(r"^\s*(what\s+(is|are)|what's|define|explain|describe|tell me about)\b", re.I)


def _definition_pattern(question: str, names: set[str]) -> re.Pattern | None:
    """For "what is X?", a pattern matching sentences that define X ("[AWS|Amazon] X … is/are …")."""
    if not _DEFINITION_Q.search(question):
        return None
    subject = [w for w in question_names(question, names)]
    if not subject:
        return None
    words = r"\W+(?:\w+\W+){0,3}?".join(re.escape(w) for w in subject[:2])
    return re.compile(rf"^(?:the\s+)?(?:aws\s+|amazon\s+)?{words}\w*\W+(?:\w+\W+){{0,4}}?(is|are)\b", re.I)


def score_units(question: str, retrieval: Retrieval, scorer: UnitScorer, *,
                sections_considered: int = DEFAULT_SECTIONS_CONSIDERED) -> list[ScoredUnit]:
    """Every unit of the top sections, scored against the question (and the searched query), best first."""
    sections = retrieval.sections[:sections_considered]
    query_vector, query, idf = retrieval.query_vector, retrieval.query, retrieval.keyword.idf
    pairs = [(u, s) for s in sections for u in units_of(s.text)]
    if not pairs:
        return []
    vectors = scorer.vectors([_unit_embed_text(u, s) for u, s in pairs])
    sims = vectors @ np.asarray(query_vector, dtype=np.float32)
    terms = content_terms(query or question)
    wants_number = bool(_QUANTITY.search(question))
    wants_list = bool(_LIST.search(question))
    definition = _definition_pattern(question, retrieval.keyword.names)
    scored = []
    for (unit, section), sim in zip(pairs, sims):
        found = _tokens_of(f"{unit.text} {unit.context} {' '.join(section.heading_path)}")
        lexical = weighted_share(terms, found, idf)
        score = W_DENSE * float(sim) + W_SECTION * (section.dense_score or 0.0) + W_LEXICAL * lexical
        if wants_number and numbers_in(unit.text):
            score += QUANTITY_BONUS
        if unit.kind == "list":
            score += LIST_BONUS if wants_list else -LIST_BONUS
        if definition and definition.match(unit.text):
            score += DEFINITION_BONUS
        scored.append(ScoredUnit(unit, section, float(sim), lexical, score))
    return sorted(scored, key=lambda s: -s.score)


def decide_abstention(question: str, ranked: list[ScoredUnit], names: set[str]) -> Decision:
    """Answer only when the notes hold something close to the question, naming what it names."""
    if not ranked:
        return Decision(True, "nothing in the notes matched")
    best = ranked[0]
    similarity = max(u.similarity for u in ranked[:5])
    section_terms = _tokens_of(f"{best.section.text} {' '.join(best.section.heading_path)}")
    missing = [n for n in question_names(question, names) if n not in section_terms]
    coverage = 1.0 - len(missing) / max(1, len(question_names(question, names)))
    if similarity < MIN_SIMILARITY:
        return Decision(True, "no passage is close in meaning", similarity, coverage, missing)
    if similarity < CONFIDENT_SIMILARITY:
        if missing:
            return Decision(True, "the notes do not mention " + ", ".join(missing) + " there", similarity,
                            coverage, missing)
        if similarity < WEAK_SIMILARITY and best.lexical < MIN_BEST_LEXICAL:
            return Decision(True, "the closest passage shares almost none of the question's terms", similarity,
                            coverage, missing)
        if _ASKS_FIGURE.search(question) and not numbers_in(best.unit.text):
            return Decision(True, "the question asks for a figure the best passage does not give", similarity,
                            coverage, missing)
    return Decision(False, "supported", similarity, coverage, missing)


def _overlaps(a: Unit, b: Unit) -> bool:
    return a.quote in b.quote or b.quote in a.quote


def select_units(question: str, ranked: list[ScoredUnit], *, max_sentences: int = DEFAULT_MAX_SENTENCES
                 ) -> list[ScoredUnit]:
    """The best unit, plus close runners-up that add something (no repeats, no overlapping quotes)."""
    if not ranked:
        return []
    margin = LIST_FOLLOW_MARGIN if _LIST.search(question) else FOLLOW_MARGIN
    chosen = [ranked[0]]
    for candidate in ranked[1:]:
        if len(chosen) >= max_sentences or candidate.score < ranked[0].score - margin:
            break
        if candidate.lexical < MIN_FOLLOW_LEXICAL or any(_overlaps(candidate.unit, c.unit) for c in chosen):
            continue
        chosen.append(candidate)
    return chosen


def compose_answer(question: str, retrieval: Retrieval, scorer: UnitScorer, *,
                   sections_considered: int = DEFAULT_SECTIONS_CONSIDERED,
                   max_sentences: int = DEFAULT_MAX_SENTENCES) -> Answer:
    """The extractive answer for one retrieval: cited sentences, or a plain refusal."""
    ranked = score_units(question, retrieval, scorer, sections_considered=sections_considered)
    decision = decide_abstention(retrieval.query, ranked, retrieval.keyword.names)
    if decision.abstained:
        return Answer(question, NOT_COVERED, True, [], [], retrieval, decision)
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for n, su in enumerate(select_units(question, ranked, max_sentences=max_sentences), start=1):
        s = su.section
        citations.append(Citation(n, s.source, s.anchor, s.heading, list(s.heading_path), su.unit.quote, s.title))
        sentences.append(AnswerSentence(su.unit.text, n))
    text = " ".join(f"{s.text} [{s.citation}]" for s in sentences)
    return Answer(question, text, False, citations, sentences, retrieval, decision)
