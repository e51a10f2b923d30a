"""What the answer model looks at: the question's shape, and how each unit and the best one match it.

Everything here is general English and arithmetic over the notes and the question, nothing named
after one corpus: the weights that turn these features into decisions are fitted on the tune halves
of three corpora (`python -m eval.fit`) and stored in `qa/answer_model.json`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from notes.units import Unit
from qa.text import content_terms, numbers_in, question_names, tokenize

_FIGURE = re.compile(r"\bhow (?:many|much|long|big|large|fast|small|often|old|soon|far)\b|"
                     r"\b(?:max(?:imum)?|min(?:imum)?|limits?|size|cost|price|percent(?:age)?|number of|"
                     r"most|least|up to|at most|at least|longest|shortest|largest|biggest|smallest|highest|lowest|"
                     r"fastest|slowest|oldest|newest)\b", re.I)
_LIST = re.compile(r"^\s*(?:which|list|name)\b|\bwhat (?:are|were)\b|\bwhat (?:\w+ )?(?:types|kinds|options|ways|"
                   r"modes|steps|features|styles|rules|tools|commands|settings|choices|values)\b|"
                   r"\b(?:types|kinds) of\b", re.I)
_DEFINITION = re.compile(r"^\s*(?:what(?:'s| is| are| does)|define|explain|describe|tell me about)\b", re.I)
_COMPARISON = re.compile(r"\b(?:vs\.?|versus|compared? (?:to|with)|difference|differ|better|rather than|"
                         r"instead of)\b|\bor\b", re.I)
ANAPHORIC_OPENER = re.compile(r"^\s*(?:this|that|these|those|it|its|it's|they|their|them|such|when|here|there|"
                              r"both|each|the latter|the former)\b", re.I)
# The kind of figure a question asks for, and the figures a passage gives (number and unit).
_ASKS = {
    "duration": re.compile(r"\bhow (?:long|soon|often)\b|\b(?:timeouts?|retention|retain|duration|ttl|expir\w*|"
                           r"lifetime|latency|delay|wait)\b", re.I),
    "size": re.compile(r"\bhow (?:big|large|small)\b|\b(?:size|sizes|memory|storage|capacity|bytes?|payload|"
                       r"disk|bandwidth|throughput)\b", re.I),
    "price": re.compile(r"\b(?:cost|costs|price|prices|pricing|charged?|charges|fees?|billed|cheap\w*|expensive|"
                        r"how much (?:does|do|is|will) \w+ (?:cost|charge))\b", re.I),
    "count": re.compile(r"\bhow many\b|\bnumber of\b", re.I),
}
_GIVES = {
    "duration": re.compile(r"\d[\d.,]*\s*(?:ms|milliseconds?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|"
                           r"weeks?|months?|years?)\b", re.I),
    "size": re.compile(r"\d[\d.,]*\s*(?:[kmgtpe]i?b|bytes?|[kmgt]bps|iops)\b", re.I),
    "price": re.compile(r"[$€£¢]\s*\d|\d\s*(?:cents?|¢|usd|dollars?|euros?)\b", re.I),
    "count": re.compile(r"\d"),
}
_MEASURE = re.compile(r"\d\s*(?:%|[kmgtp]i?b\b|bytes?\b|ms\b|s\b|sec|second|minute|min\b|hour|hr\b|day|week|"
                      r"month|year|x\b|times\b)|[$€£]\s*\d", re.I)


@dataclass
class QuestionInfo:
    """A question as the answer model sees it."""

    text: str
    query: str  # what was searched (the question, with the earlier subject for a follow-up)
    terms: list[str]  # content terms of the question itself
    query_terms: list[str]  # content terms of what was searched
    names: list[str]  # words written as names, or that the notes always write as names
    numbers: set[str]
    figure: bool
    list: bool
    definition: bool
    comparison: bool
    kinds: list[str] = field(default_factory=list)  # the kinds of figure asked for (duration, size, price, count)
    rare_terms: list[str] | None = None  # the rarer half of `terms` in the notes (set by `with_rare_terms`)

    def with_rare_terms(self, idf) -> "QuestionInfo":
        self.rare_terms = _rare(self.terms, idf)
        return self

    @classmethod
    def of(cls, question: str, query: str, vocabulary: set[str]) -> "QuestionInfo":
        names = question_names(question, vocabulary)
        return cls(question, query, content_terms(question), content_terms(query), names, numbers_in(question),
                   bool(_FIGURE.search(question)), bool(_LIST.search(question)), bool(_DEFINITION.search(question)),
                   bool(_COMPARISON.search(question)) and len(names) >= 2, asked_kinds(question))


@lru_cache(maxsize=65536)
def tokens_of(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def tokens_of_section(section) -> frozenset[str]:
    """The tokens of a retrieved section's text and heading path (what a question's words are looked up in)."""
    return tokens_of(f"{section.text} {' '.join(section.heading_path)}")


def weighted_share(terms: list[str], found: frozenset[str] | set[str], idf) -> float:
    """IDF-weighted share of `terms` that occur in `found` (1.0 when there are no terms)."""
    total = sum(idf(t) for t in terms)
    return sum(idf(t) for t in terms if t in found) / total if total else 1.0


def has_measure(text: str) -> bool:
    """A figure with its unit: `15 minutes`, `400 KB`, `$0.20`, `99.9%`."""
    return bool(_MEASURE.search(text))


UNIT_FEATURES = ("similarity", "similarity_gap", "similarity_rank", "section_dense", "section_rank", "unit_terms",
                 "rare_terms", "heading_terms", "names_present", "figure_match", "measure_match", "kind_match",
                 "list_match",
                 "definition_match", "is_list", "is_row", "is_item", "is_bullet", "log_words", "anaphoric",
                 "first_in_section", "question_numbers_present")


@dataclass
class Candidate:
    """One unit of one retrieved section, with its features and (once ranked) its score."""

    unit: Unit
    section: object  # qa.retrieve.SectionHit
    section_rank: int
    similarity: float
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


def _rare(terms: list[str], idf) -> list[str]:
    """The question's terms that say most (the rarer half in the notes)."""
    ordered = sorted(terms, key=lambda t: -idf(t))
    return ordered[:max(1, (len(ordered) + 1) // 2)] if ordered else []


def add_relative_features(cands: list[Candidate]) -> None:
    """Features that compare a unit with the other candidates (similarity scales differ between notes)."""
    sims = sorted((c.similarity for c in cands), reverse=True)
    rank: dict[float, int] = {}
    for i, sim in enumerate(sims):
        rank.setdefault(sim, i)  # tied similarities share the better rank
    for c in cands:
        c.features["similarity_gap"] = sims[0] - c.similarity
        c.features["similarity_rank"] = 1.0 / (1 + rank[c.similarity])


def unit_features(info: QuestionInfo, c: Candidate, idf) -> dict[str, float]:
    """A unit's features on its own (`add_relative_features` adds those against the others)."""
    u, s = c.unit, c.section
    unit_tokens = tokens_of(f"{u.text} {u.context} {u.label}")
    heading_tokens = tokens_of(" ".join(s.heading_path))
    names = info.names
    words = len(u.text.split())
    return {
        "similarity": c.similarity,
        "section_dense": s.dense_score or 0.0,
        "section_rank": 1.0 / c.section_rank,
        "unit_terms": weighted_share(info.query_terms, unit_tokens, idf),
        "rare_terms": weighted_share(info.rare_terms, unit_tokens | heading_tokens, idf),
        "heading_terms": weighted_share(info.query_terms, heading_tokens, idf),
        "names_present": weighted_share(names, unit_tokens | heading_tokens, idf) if names else 1.0,
        "figure_match": float(info.figure and bool(numbers_in(u.text))),
        "measure_match": float(info.figure and has_measure(u.text)),
        "kind_match": float(any(gives(k, u.text) for k in info.kinds)),
        "list_match": float(info.list and u.kind in ("list", "row")),
        "definition_match": float(info.definition and u.order <= 1 and not ANAPHORIC_OPENER.match(u.text)),
        "is_list": float(u.kind == "list"),
        "is_row": float(u.kind == "row"),
        "is_item": float(u.kind == "item"),
        "is_bullet": float(u.kind == "bullet"),
        "log_words": math.log1p(words),
        "anaphoric": float(bool(ANAPHORIC_OPENER.match(u.text))),
        "first_in_section": float(u.order == 0),
        "question_numbers_present": (sum(n in numbers_in(u.text) for n in info.numbers) / len(info.numbers)
                                     if info.numbers else 1.0),
    }


ANSWERABLE_FEATURES = ("best_score", "best_similarity", "top_dense", "dense_gap", "section_terms", "unit_terms",
                       "names_missing_best", "names_missing_all", "figure_without_number", "figure_none_in_top",
                       "kind_without_figure", "kind_none_in_top", "numbers_missing", "rare_missing_section",
                       "rare_missing_unit", "agreement")


def asked_kinds(question: str) -> list[str]:
    """The kinds of figure a question asks for: duration, size, price, count."""
    return [kind for kind, pattern in _ASKS.items() if pattern.search(question)]


def gives(kind: str, text: str) -> bool:
    return bool(_GIVES[kind].search(text))


def answerable_features(info: QuestionInfo, ranked: list[Candidate], sections: list, idf) -> dict[str, float]:
    """How well the best candidates cover the question (inputs of the answer-or-refuse decision)."""
    best = ranked[0]
    section_tokens = tokens_of_section(best.section)
    all_tokens = frozenset().union(*(tokens_of_section(s) for s in sections))
    dense = sorted((s.dense_score or 0.0 for s in sections), reverse=True) + [0.0, 0.0]
    rare = _rare(info.query_terms, idf)
    unit_tokens = tokens_of(f"{best.unit.text} {best.unit.context} {best.unit.label} {' '.join(best.section.heading_path)}")
    top_units = ranked[:3]
    kinds = info.kinds
    return {
        "best_score": best.score,
        "best_similarity": best.similarity,
        "top_dense": dense[0],
        "dense_gap": dense[0] - dense[1],
        "section_terms": weighted_share(info.query_terms, section_tokens, idf),
        "unit_terms": best.features.get("unit_terms", 0.0),
        "names_missing_best": (sum(n not in section_tokens for n in info.names) / len(info.names)
                               if info.names else 0.0),
        "names_missing_all": (sum(n not in all_tokens for n in info.names) / len(info.names) if info.names else 0.0),
        "figure_without_number": float(info.figure and not numbers_in(best.unit.text)),
        "figure_none_in_top": float(info.figure and not any(numbers_in(c.unit.text) for c in top_units)),
        "kind_without_figure": float(any(not gives(k, best.unit.text) for k in kinds)),
        "kind_none_in_top": float(any(not any(gives(k, c.unit.text) for c in top_units) for k in kinds)),
        "numbers_missing": (sum(n not in numbers_in(best.section.text) for n in info.numbers) / len(info.numbers)
                            if info.numbers else 0.0),
        "rare_missing_section": 1.0 - weighted_share(rare, section_tokens, idf),
        "rare_missing_unit": 1.0 - weighted_share(rare, unit_tokens, idf),
        "agreement": float(best.section_rank == 1),
    }


def as_matrix(rows: list[dict[str, float]], names: tuple[str, ...]) -> np.ndarray:
    return np.asarray([[row[n] for n in names] for row in rows], dtype=np.float64).reshape(len(rows), len(names))
