"""What the answer decision looks at besides the reader: the question's shape, and how much of it the
retrieved sections hold.

Everything here is general English and arithmetic over the notes and the question, nothing named
after one corpus: the weights that turn these features into a decision are fitted on the tune halves
of the evaluation corpora (`python -m eval.fit`) and stored in `qa/answer_model.json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from notes.units import Unit
from qa.text import content_terms, numbers_in, question_names, tokenize

_LIST = re.compile(r"^\s*(?:which|list|name)\b|\bwhat (?:are|were)\b|\bwhat (?:\w+ )?(?:types|kinds|options|ways|"
                   r"modes|steps|features|styles|rules|tools|commands|settings|choices|values)\b|"
                   r"\b(?:types|kinds) of\b", re.I)
_COMPARISON = re.compile(r"\b(?:vs\.?|versus|compared? (?:to|with)|difference|differ|better|rather than|"
                         r"instead of)\b|\bor\b", re.I)
ANAPHORIC_OPENER = re.compile(r"^\s*(?:this|that|these|those|it|its|it's|they|their|them|such|when|here|there|"
                              r"both|each|the latter|the former)\b", re.I)
_NUMBER_WORDS = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                 r"forty|fifty|sixty|hundred|thousand|million|billion|dozen|once|twice|single|double|half)")
# The kind of figure a question asks for, and the figures a passage gives (number, or number word, and unit).
_ASKS = {
    "duration": re.compile(r"\bhow (?:long|soon|often)\b|\b(?:timeouts?|retention|retain|duration|ttl|expir\w*|"
                           r"lifetime|latency|delay|wait)\b", re.I),
    "size": re.compile(r"\bhow (?:big|large|small)\b|\b(?:size|sizes|memory|storage|capacity|bytes?|payload|"
                       r"disk|bandwidth|throughput)\b", re.I),
    "price": re.compile(r"\b(?:cost|costs|price|prices|pricing|charged?|charges|fees?|billed|cheap\w*|expensive|"
                        r"how much (?:does|do|is|will) \w+ (?:cost|charge))\b", re.I),
    "count": re.compile(r"\bhow many\b|\bnumber of\b", re.I),
}
_FIGURE = rf"(?:\d[\d.,]*|\b{_NUMBER_WORDS})"
_GIVES = {
    "duration": re.compile(_FIGURE + r"[\s-]*(?:ms|milliseconds?|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|"
                           r"days?|weeks?|months?|years?)\b", re.I),
    "size": re.compile(r"\d[\d.,]*\s*(?:[kmgtpe]i?b|bytes?|[kmgt]bps|iops)\b", re.I),
    "price": re.compile(r"[$€£¢]\s*\d|\d\s*(?:cents?|¢|usd|dollars?|euros?)\b|\bfree\b", re.I),
    "count": re.compile(rf"\d|\b{_NUMBER_WORDS}\b|\bunlimited\b", re.I),
}


@dataclass
class QuestionInfo:
    """A question as the answer decision sees it."""

    text: str
    query: str  # what was searched (the question, with the earlier subject for a follow-up)
    terms: list[str]  # content terms of the question itself
    query_terms: list[str]  # content terms of what was searched
    names: list[str]  # words written as names, or that the notes always write as names
    numbers: set[str]
    list: bool
    comparison: bool
    kinds: list[str] = field(default_factory=list)  # the kinds of figure asked for (duration, size, price, count)

    @classmethod
    def of(cls, question: str, query: str, vocabulary: set[str]) -> "QuestionInfo":
        names = question_names(question, vocabulary)
        return cls(question, query, content_terms(question), content_terms(query), names, numbers_in(question),
                   bool(_LIST.search(question)), bool(_COMPARISON.search(question)) and len(names) >= 2,
                   asked_kinds(question))


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


@dataclass
class Candidate:
    """One unit of one retrieved section: its cheap score (similarity and words in common, to choose what
    the reader reads) and, once read, the reader's log-odds that it answers the question."""

    unit: Unit
    section: object  # qa.retrieve.SectionHit
    similarity: float
    terms: float = 0.0  # IDF-weighted share of the searched terms the unit (with its headings) holds
    passage: str = ""  # what the reader read: heading path, what the unit hangs from, the unit
    reader: float = float("-inf")  # the reader's log-odds that it answers; -inf when it was not read
    score: float = float("-inf")  # the ranking score (the fitted ranker over the reader and a few features)


def asked_kinds(question: str) -> list[str]:
    """The kinds of figure a question asks for: duration, size, price, count."""
    return [kind for kind, pattern in _ASKS.items() if pattern.search(question)]


def gives(kind: str, text: str) -> bool:
    """Whether `text` gives a figure of that kind ("15 minutes", "five days", "exactly one", "$0.20")."""
    return bool(_GIVES[kind].search(text))


RANK_FEATURES = ("reader", "similarity", "terms", "list_match", "kind_match", "is_list", "is_row",
                 "log_words")
ANSWERABLE_FEATURES = ("reader_best", "reader_max", "top_dense", "names_missing", "numbers_missing", "kind_missing")


def rank_features(info: QuestionInfo, c: Candidate) -> dict[str, float]:
    """What the ranker weighs beside the reader: the retrieval's view, and whether the unit has the shape
    the question asks for (a list for "which…", the kind of figure for "how long…")."""
    kind = c.unit.kind
    return {
        "reader": c.reader,
        "similarity": c.similarity,
        "terms": c.terms,
        "list_match": float(info.list and kind in ("list", "row")),
        "kind_match": float(any(gives(k, c.unit.text) for k in info.kinds)),
        "is_list": float(kind == "list"),
        "is_row": float(kind == "row"),
        "log_words": float(np.log1p(len(c.unit.text.split()))),
    }


def answerable_features(info: QuestionInfo, ranked: list[Candidate], sections: list) -> dict[str, float]:
    """How well the best read units answer the question (inputs of the answer-or-refuse decision)."""
    best = ranked[0]
    all_tokens = frozenset().union(*(tokens_of_section(s) for s in sections))
    read = [c for c in ranked if c.reader > float("-inf")]
    top = read[:3]
    return {
        "reader_best": best.reader,
        "reader_max": max(c.reader for c in read),
        "top_dense": max((s.dense_score or 0.0 for s in sections), default=0.0),
        "names_missing": sum(n not in all_tokens for n in info.names) / len(info.names) if info.names else 0.0,
        "numbers_missing": (sum(n not in numbers_in(best.section.text) for n in info.numbers) / len(info.numbers)
                            if info.numbers else 0.0),
        "kind_missing": float(any(not any(gives(k, c.unit.text) for c in top) for k in info.kinds)),
    }


def as_matrix(rows: list[dict[str, float]], names: tuple[str, ...]) -> np.ndarray:
    return np.asarray([[row[n] for n in names] for row in rows], dtype=np.float64).reshape(len(rows), len(names))
