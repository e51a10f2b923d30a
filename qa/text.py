"""Small text helpers shared by keyword search, answer selection and the support judge.

Hand-written because the usual tools need downloads at run time (NLTK's punkt and stopword data,
spaCy models); these rules are enough for English study notes and keep everything offline.
"""

from __future__ import annotations

import re
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each few for from further had hadn't has hasn't have haven't having he her here hers herself him
    himself his how i if in into is isn't it it's its itself let's me more most my myself no nor not of off
    on once only or other ought our ours ourselves out over own same she should shouldn't so some such than
    that that's the their theirs them themselves then there these they this those through to too under until
    up very was wasn't we were weren't what when where which while who whom why will with won't would
    wouldn't you your yours yourself yourselves i'm i've i'd i'll you're we're it's also via e.g eg i.e ie etc use used using us one get gets
    there's what's whats tell explain describe does do did anything something thing things like much many
    mean means exactly really please know need want""".split()
)

_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
_NUMBER = re.compile(r"(?<![A-Za-z])\d+(?:[.,]\d+)*")


@lru_cache(maxsize=65536)  # a few thousand distinct words, stemmed for every chunk of every keyword build
def stem(token: str) -> str:
    """A light suffix stripper: enough to match `functions`/`function`, `loading`/`load`."""
    if len(token) <= 3 or token.isdigit():
        return token
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            if suffix == "es" and not token.endswith(("shes", "ches", "xes", "sses", "zes")):
                continue
            if suffix == "s" and token.endswith(("ss", "us", "is")):
                return token
            return token[: len(token) - len(suffix)] + keep
    return token


def _words(text: str) -> list[str]:
    return [re.sub(r"'s$", "", t) for t in _TOKEN.findall(text.lower())]


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, stop words removed, lightly stemmed (used for BM25 and overlap)."""
    return [stem(t) for t in _words(text) if t not in STOPWORDS]


_CASED_WORD = re.compile(r"(?<![\w.'])([A-Za-z][A-Za-z0-9]*(?:[.'][A-Za-z0-9]+)*)")
_INNER_CAPS = re.compile(r"(?<=.)[A-Z]|[0-9]")  # a capital after the first letter, or a digit: DynamoDB, S3


def cased_terms(text: str) -> list[tuple[str, bool | None]]:
    """(stemmed token, looks like a name) per word: capitalised mid-sentence, or an acronym.

    A capitalised word that starts a sentence tells nothing either way: its flag is None.
    """
    out = []
    for m in _CASED_WORD.finditer(text):
        word = m.group(1)
        if word.endswith("'s"):
            word = word[:-2]
        before = m.start() - 1  # the last non-blank character before the word (no slicing: long texts)
        while before >= 0 and text[before].isspace():
            before -= 1
        sentence_start = before < 0 or text[before] in ".!?:-*#>(\"›•·|"
        inner_caps = _INNER_CAPS.search(word) is not None
        named = True if inner_caps else (None if sentence_start else word[0].isupper())
        low = word.lower()
        if low not in STOPWORDS:
            out.append((stem(low), named))
        else:
            out.append((low, False))
    return out


_CODE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$|`[^`\n]+`", re.S | re.M)


def name_vocabulary(texts: list[str], *, min_share: float = 0.75) -> set[str]:
    """Tokens the notes nearly always write as names (Lambda, DynamoDB, CloudFront, SQS…). Words in code
    count neither way: `helmfile sync` in a command says nothing about how the prose writes Helmfile."""
    named: dict[str, int] = {}
    total: dict[str, int] = {}
    for text in texts:
        for token, is_name in cased_terms(_CODE.sub(" ", text) if "`" in text or "~~~" in text else text):
            if is_name is None:
                continue
            total[token] = total.get(token, 0) + 1
            named[token] = named.get(token, 0) + is_name
    return {t for t, n in total.items() if named[t] / n >= min_share and t not in STOPWORDS and len(t) > 1}


def question_names(question: str, vocabulary: set[str]) -> list[str]:
    """The names a question mentions: written as a name, or known to the notes as one."""
    seen: dict[str, None] = {}
    for token, is_name in cased_terms(question):
        if token in STOPWORDS:
            continue
        if is_name or token in vocabulary:
            seen.setdefault(token, None)
    return list(seen)


_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget)\b[^.\n]{0,40}\b(instructions?|prompts?|rules|above|previous)\b|"
    r"\byou are now\b|\bsystem prompt\b|\bnew instructions?\b|^\W*(?:please\s+)?act as\b", re.I)  # an order to act as…,
# not "two subnets to act as the subnet group"


def gives_instructions(text: str) -> bool:
    """A sentence in a note that talks to a language model ("ignore previous instructions…"): never
    sent to one, never shown as an answer."""
    return bool(_INSTRUCTION.search(text))


def plural(count: int, word: str, words: str | None = None) -> str:
    """'1 file', '2 files' (`words` for an irregular plural)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def content_terms(text: str) -> list[str]:
    """Distinct tokens that say what `text` is about, in order."""
    seen: dict[str, None] = {}
    for t in tokenize(text):
        if len(t) > 1 or t.isdigit():
            seen.setdefault(t, None)
    return list(seen)


def numbers_in(text: str) -> set[str]:
    """Numbers as written (`900`, `0.20`, `1,000,000` → `1000000`)."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}
