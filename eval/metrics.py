"""The evaluation's metrics as pure functions over plain values (ids, strings, booleans, numbers).

Retrieval is scored by section: a retrieved section is relevant when its id (`source#anchor`) is one
of the item's reference sections. Citation recall and precision follow ALCE (Gao et al. 2023,
"Enabling Large Language Models to Generate Text with Citations", §4.2 and their `eval.py`), with
`supports(claim, passage)` standing in for their NLI model.

Example:
    >>> recall_at_k(["a#2", "a#7", "a#1"], {"a#1"}, 3)
    1.0
    >>> reciprocal_rank(["a#2", "a#7", "a#1"], {"a#1"})
    0.3333333333333333
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

Supports = Callable[[str, str], bool]


# --- retrieval -------------------------------------------------------------------------------------

def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant sections found in the top `k` (for one reference, 1.0 or 0.0)."""
    if not relevant:
        raise ValueError("recall needs at least one relevant section")
    return len(set(ranked[:k]) & set(relevant)) / len(set(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """1 / rank of the first relevant section within the top `k`, else 0 (averaged, this is MRR@k)."""
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain with binary relevance: Σ rel_i / log2(i + 1) over the top
    `k`, divided by the same sum for an ideal ranking (all relevant sections first)."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("nDCG needs at least one relevant section")
    seen: set[str] = set()
    dcg = 0.0
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant and item not in seen:  # a section counts once
            dcg += 1.0 / math.log2(i + 1)
            seen.add(item)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# --- answers ---------------------------------------------------------------------------------------

def _fold(text: str) -> str:
    return " ".join(text.replace("`", "").casefold().split())  # inline code is shown in backticks


def key_facts_found(answer: str, key_facts: Sequence[Sequence[str]]) -> list[bool]:
    """Per key fact: does any of its acceptable spellings occur in the answer (case-insensitive)?"""
    text = _fold(answer)
    return [any(_fold(spelling) in text for spelling in fact) for fact in key_facts]


def key_fact_recall(answer: str, key_facts: Sequence[Sequence[str]]) -> float | None:
    """Share of the key facts present in the answer; None when the item lists none."""
    found = key_facts_found(answer, key_facts)
    return sum(found) / len(found) if found else None


# --- grounding and citations -----------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """One answer sentence and the citation numbers it carries (ALCE's statement + its citations)."""

    text: str
    citations: tuple[int, ...] = ()


def grounding(claims: Sequence[Claim], passages: Mapping[int, str], supports: Supports) -> list[bool]:
    """Per sentence: is it supported by the passage(s) it cites? A sentence citing nothing is not."""
    out = []
    for claim in claims:
        cited = [passages[n] for n in claim.citations if n in passages]
        out.append(bool(cited) and supports(claim.text, "\n\n".join(cited)))
    return out


@dataclass(frozen=True)
class CitationScores:
    """ALCE citation recall and precision for one answer, with the counts behind them."""

    recall: float
    precision: float
    sentences: int
    supported_sentences: int
    citations: int
    relevant_citations: int


def citation_scores(claims: Sequence[Claim], passages: Mapping[int, str], supports: Supports) -> CitationScores:
    """ALCE citation recall and precision of one answer.

    Citation recall: share of sentences whose cited passages, concatenated, support them (a sentence
    without citations, or citing a passage that does not exist, scores 0 and, as in ALCE's code, adds
    nothing to the citation count).

    Citation precision: share of citations that are relevant. When a sentence is supported by its
    citations jointly: a citation is *irrelevant* if (a) it alone does not support the sentence and
    (b) the remaining citations still do; all others are relevant. When a sentence is not supported
    jointly, its citations are all irrelevant (for a single citation: relevant iff it supports).
    """
    supported_sentences = relevant = total = 0
    for claim in claims:
        ids = list(dict.fromkeys(claim.citations))
        if not ids or any(n not in passages for n in ids):
            continue  # as in ALCE: unsupported, and its citations are not counted
        total += len(ids)
        joint = supports(claim.text, "\n\n".join(passages[n] for n in ids))
        supported_sentences += joint
        if not joint:
            continue
        if len(ids) == 1:
            relevant += 1
            continue
        for n in ids:
            if supports(claim.text, passages[n]):
                relevant += 1  # condition (a) fails: it supports on its own
                continue
            rest = "\n\n".join(passages[m] for m in ids if m != n)
            if not supports(claim.text, rest):
                relevant += 1  # condition (b) fails: the others need it
    recall = supported_sentences / len(claims) if claims else 0.0
    precision = relevant / total if total else 0.0
    return CitationScores(recall, precision, len(claims), supported_sentences, total, relevant)


# --- abstention and latency ------------------------------------------------------------------------

def rate(flags: Iterable[bool]) -> float | None:
    """Share of True values; None for no values."""
    flags = list(flags)
    return sum(bool(f) for f in flags) / len(flags) if flags else None


def correct_refusal_rate(abstained: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Share of unanswerable items the pipeline declined to answer."""
    return rate(a for a, ok in zip(abstained, answerable) if not ok)


def false_refusal_rate(abstained: Sequence[bool], answerable: Sequence[bool]) -> float | None:
    """Share of answerable items the pipeline declined to answer."""
    return rate(a for a, ok in zip(abstained, answerable) if ok)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
