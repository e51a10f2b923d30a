"""Offline "is this sentence supported by this passage?" judge: embedding similarity + a lexical check.

Similarity alone cannot tell "15 minutes" from "5 minutes", or "DynamoDB Streams" from "Kinesis
Data Streams": both pairs embed almost alike. So a sentence counts as supported only when

  1. it is close in meaning to the passage: the best cosine between the sentence and a line or
     sentence of the passage (see `passage_windows`; 1.0 for a verbatim quote) is ≥ `min_similarity`;
  2. every number in the sentence appears in the passage (`10GB` and `10 GB` alike, `1,000,000` as
     `1000000`), with no tolerance;
  3. at least `min_content_share` of the sentence's content words (stop words dropped, lightly
     stemmed, citation markers like `[1]` ignored) appear in the passage; a word also counts as
     present when it shares a long prefix with a passage word (`expire`/`expiry`, `deleted`/`deletion`),
     since the light stemmer leaves such pairs apart;
  4. the sentence and the passage line it is closest to agree on negation ("can be increased" vs
     "cannot be increased", "does not consume" vs "consumes"), which neither similarity nor a bag of
     words sees.

`SupportJudge(model)(sentence, passage)` and `judge_support(...)` return (supported, similarity,
missing numbers / words, plus "<negation>" on a polarity mismatch). The two thresholds are fitted by
a grid search on the hand labels in `eval/judge_labels.jsonl` (`python -m eval.judge` re-fits them
and rewrites `qa/judge_thresholds.json`). It lives in `qa/` because the LLM answer mode checks its
sentences with it; the evaluation uses the same judge.

Example:
    >>> from qa.embeddings import load_embedding_model
    >>> model = load_embedding_model()
    >>> passage = "Maximum execution time: 900 seconds (15 minutes)."
    >>> judge_support("The maximum execution time is 900 seconds [1].", passage, model)
    (True, 0.93..., [])
    >>> judge_support("The maximum execution time is 5 minutes [1].", passage, model)
    (False, 0.89..., ['5'])
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from notes.blocks import plain_text
from notes.sentences import split_sentences
from qa.text import content_terms, numbers_in, tokenize

# Fitted by `python -m eval.judge` on the hand labels in eval/judge_labels.jsonl.
THRESHOLDS_PATH = Path(__file__).resolve().parent / "judge_thresholds.json"

DEFAULT_MIN_SIMILARITY = 0.6
DEFAULT_MIN_CONTENT_SHARE = 0.9

SHORT_LINE_WORDS = 8  # lines shorter than this are also read together with the next line
MAX_WINDOWS = 8  # passage windows embedded per sentence (those sharing the most words with it)
_NEGATION = re.compile(
    r"\b(?:not|no|never|cannot|can't|don't|doesn't|didn't|isn't|aren't|wasn't|won't|without|none|nor)\b|n't\b",
    re.I)
NEGATION_MISMATCH = "<negation>"  # how a polarity disagreement shows in `missing`
_LEAD_IN = re.compile(r"^([^:]{1,80}):\s+(.+)$", re.S)
_CITATION_MARKER = re.compile(r"\s*\[\d+(?:\s*[,;]\s*\d+)*\]")
_NUMBER_THEN_UNIT = re.compile(r"(\d)([A-Za-z])")


@dataclass(frozen=True)
class JudgeThresholds:
    """The two knobs of the judge (numbers must always all be present)."""

    min_similarity: float = DEFAULT_MIN_SIMILARITY
    min_content_share: float = DEFAULT_MIN_CONTENT_SHARE


@dataclass
class Verdict:
    """The judge's answer for one sentence/passage pair, with the evidence behind it."""

    supported: bool
    similarity: float
    content_share: float
    missing_numbers: list[str] = field(default_factory=list)
    missing_terms: list[str] = field(default_factory=list)
    polarity_ok: bool = True

    @property
    def missing(self) -> list[str]:
        return self.missing_numbers + self.missing_terms + ([] if self.polarity_ok else [NEGATION_MISMATCH])


def strip_citations(text: str) -> str:
    """'Up to 900 seconds [1].' → 'Up to 900 seconds.'"""
    return _CITATION_MARKER.sub("", text).strip()


def normalise(text: str) -> str:
    """Plain text for matching: no citation markers or Markdown, numbers split from units (10GB → 10 GB)."""
    return _NUMBER_THEN_UNIT.sub(r"\1 \2", plain_text(strip_citations(text)))


MIN_SHARED_PREFIX = 5


def term_present(term: str, found: set[str]) -> bool:
    """`term` is in `found`, or a word there differs only by a short ending (`giv`/`give`) or shares a
    long prefix with it (`expire`/`expiry`, `delet`/`deletion`)."""
    if term in found:
        return True
    for other in found:
        short, long = sorted((term, other), key=len)
        if len(short) >= 3 and long.startswith(short) and len(long) - len(short) <= 2:
            return True
        if len(short) >= MIN_SHARED_PREFIX and long[:MIN_SHARED_PREFIX] == short[:MIN_SHARED_PREFIX]:
            return True
    return False


def lexical_check(sentence: str, passage: str) -> tuple[float, list[str], list[str]]:
    """(share of the sentence's content words found in the passage, missing numbers, missing words).

    Numbers are checked on their own, so they do not count among the content words.
    """
    s, p = normalise(sentence), normalise(passage)
    missing_numbers = sorted(numbers_in(s) - numbers_in(p), key=lambda n: s.find(n))
    terms = [t for t in content_terms(s) if not t.replace(".", "").isdigit()]
    found = set(tokenize(p))
    missing_terms = [t for t in terms if not term_present(t, found)]
    share = 1.0 - len(missing_terms) / len(terms) if terms else 1.0
    return share, missing_numbers, missing_terms


def _fold(text: str) -> str:
    return " ".join(text.split()).rstrip(".!?:;, ").casefold()


def negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


def passage_windows(passage: str) -> list[str]:
    """The passage's lines and their sentences, short lines also joined to the next one (a bullet
    like "a 24-hour retention period, and" reads on into the next).

    A sentence restating one bullet of a long section should be compared with that bullet, not with
    the whole section, whose embedding is an average of everything it says (and is cut at the
    model's 256 tokens).
    """
    text = normalise(passage)
    lines = [line.strip(" \t-*+>#") for line in text.splitlines()]
    lines = [line for line in lines if len(line.split()) >= 2]
    if not lines:
        return [text] if text.strip() else []
    windows = []
    for i, line in enumerate(lines):
        windows.append(line)
        spans = split_sentences(line)
        if len(spans) > 1:
            windows += [line[a:b] for a, b in spans]
        if i + 1 < len(lines) and len(line.split()) < SHORT_LINE_WORDS:
            windows.append(f"{line} {lines[i + 1]}")
    return [w for w in dict.fromkeys(windows) if w.strip()]


def candidate_windows(claim: str, windows: list[str], limit: int) -> list[str]:
    """The `limit` windows sharing the most words with the claim (embedding every line of every cited
    section would cost more than the rest of the evaluation; the closest line shares words)."""
    if len(windows) <= limit:
        return windows
    terms = set(tokenize(claim))
    overlap = [len(terms & set(tokenize(w))) / (1 + 0.01 * len(w)) for w in windows]
    order = sorted(range(len(windows)), key=lambda i: -overlap[i])[:limit]
    return [windows[i] for i in sorted(order)]


class SupportJudge:
    """The judge bound to an embedding model (which caches passage vectors by text for the process)."""

    def __init__(self, model, thresholds: JudgeThresholds | None = None):
        self.model = model
        self.thresholds = thresholds or load_thresholds()

    def closest(self, sentence: str, passage: str) -> tuple[float, str]:
        """(best cosine between the sentence and any window of the passage, the closest line or
        sentence of the passage). Vectors are normalised, so a dot product is the cosine."""
        claim = normalise(sentence)
        text = _fold(normalise(passage))
        if len(claim.split()) >= 3 and _fold(claim) in text:
            return 1.0, claim  # a verbatim quote: nothing to embed
        lead = _LEAD_IN.match(claim)  # "Lambda SnapStart: When enabled, …": a quote with its subject in front
        if lead and len(lead.group(2).split()) >= 3 and _fold(lead.group(1)) in text and _fold(lead.group(2)) in text:
            return 1.0, lead.group(2)
        windows = candidate_windows(claim, passage_windows(passage), MAX_WINDOWS)
        if not claim or not windows:
            return 0.0, ""
        vectors = self.model.embed_texts([claim, *windows])  # cached per process, shared with the answer scorer
        sims = vectors[1:] @ vectors[0]
        best = int(np.argmax(sims))
        return float(sims[best]), windows[best]

    def similarity(self, sentence: str, passage: str) -> float:
        return self.closest(sentence, passage)[0]

    def features(self, sentence: str, passage: str) -> Verdict:
        """Everything the judge looks at, before thresholds (`supported` is left False)."""
        similarity, line = self.closest(sentence, passage)
        share, missing_numbers, missing_terms = lexical_check(sentence, passage)
        polarity_ok = negated(strip_citations(sentence)) == negated(line)
        return Verdict(False, similarity, share, missing_numbers, missing_terms, polarity_ok)

    def verdict(self, sentence: str, passage: str, thresholds: JudgeThresholds | None = None) -> Verdict:
        v = self.features(sentence, passage)
        v.supported = decide(v, thresholds or self.thresholds)
        return v

    def supports(self, sentence: str, passage: str) -> bool:
        return self.verdict(sentence, passage).supported

    def __call__(self, sentence: str, passage: str) -> tuple[bool, float, list[str]]:
        v = self.verdict(sentence, passage)
        return v.supported, v.similarity, v.missing


def decide(v: Verdict, t: JudgeThresholds) -> bool:
    """The rule: close in meaning, every number present, enough content words, same polarity."""
    return (v.similarity >= t.min_similarity and not v.missing_numbers and v.polarity_ok
            and v.content_share >= t.min_content_share - 1e-9)


_JUDGES: dict[int, SupportJudge] = {}


def judge_support(sentence: str, passage: str, model, thresholds: JudgeThresholds | None = None
                  ) -> tuple[bool, float, list[str]]:
    """Is `sentence` supported by `passage`? → (supported, similarity, missing numbers and words).

    `model` is the pipeline's embedding model (anything with `embed_documents` returning normalised
    vectors); a judge per model is kept so repeated calls reuse embeddings.
    """
    judge = _JUDGES.get(id(model))
    if judge is None or judge.model is not model:
        judge = _JUDGES[id(model)] = SupportJudge(model)
    v = judge.verdict(sentence, passage, thresholds)
    return v.supported, v.similarity, v.missing


# --- thresholds file ---------------------------------------------------------------------------

def load_thresholds(path: Path = THRESHOLDS_PATH) -> JudgeThresholds:
    """The calibrated thresholds, or the defaults when the file does not exist yet."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return JudgeThresholds()
    return JudgeThresholds(float(data["min_similarity"]), float(data["min_content_share"]))


def load_calibration(path: Path = THRESHOLDS_PATH) -> dict:
    """The whole thresholds file (thresholds, agreement on the labels, date…), {} when missing."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
