"""Where a blank can go in a unit's text: a figure with its unit, a name, a term the sentence defines, a
command in prose, or a short list's item; each candidate scored, best kinds first.

Written by hand: no library we use finds cloze candidates; names are learned from the notes themselves
(`qa.text.name_vocabulary`), never listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from notes.units import Unit
from qa.text import STOPWORDS, stem
from study.keep import POINTS_BACK

MAX_ANSWER_WORDS = 5
MAX_LIST_ITEMS = 4  # a longer list has too many right answers for one blank

# A figure: a number not glued to letters before it (EC2, S3 are names), with its unit when one follows, or
# a range of two ("128 MB to 10GB", "5-10 seconds"). Units of measure and counting words are generic
# English, not any one corpus's vocabulary.
_UNIT_WORDS = ("ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|times|"
               "bytes?|bits?|characters?|chars|requests?|copies|items?|records?|rows?|lines?|files?|versions?|"
               "instances?|nodes?|regions?|zones?|AZs|accounts?|users?|connections?|partitions?|shards?|"
               "retries|attempts?|steps?|levels?|digits?|cents?|dollars?|percent|million|billion|thousand")
_UNIT = rf"(?:(?:\s?(?:%|[KMGTP]i?B(?:/s|-[a-z]+)?\b|[KMGT]Hz\b|x\b)|\s(?:{_UNIT_WORDS})\b|-(?:[a-z]+)\b))?"
_NUM = r"(?<![\w.$@/-])[$€£]?\d[\d,]*(?:\.\d+)?"
_FIGURE = re.compile(rf"[<>~]?{_NUM}{_UNIT}(?:\s?(?:-|–|to)\s?{_NUM}{_UNIT})?")
_DEFINES = re.compile(r"^(?P<term>[^,;:()]{2,60}?)\s+(?:is|are|was|refers to|means)\s+(?:a|an|the|one)\s+", re.I)
_DEFINES_LABEL = re.compile(r"^(?:(?:this|these|it|they)\s+(?:is|are)\b|(?:a|an)\s)", re.I)
_CODE_SPAN = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[\w@&+#.'/-]+")
_NAME_JOINERS = frozenset({"&", "of", "for", "on", "de"})


@dataclass(frozen=True)
class Blank:
    """A candidate blank inside a unit's text: [start, end) and what kind of thing it is."""

    start: int
    end: int
    kind: str
    score: float


def is_name_word(word: str, names: set[str]) -> bool:
    core = word.strip(".,'\"")
    if not core or core.lower() in STOPWORDS:
        return False
    if core[0].isdigit():
        return False  # 10GB, 128MB: a figure
    if any(c.isdigit() for c in core) and any(c.isalpha() for c in core):
        return True  # EC2, S3, Route53
    if any(c.isupper() for c in core[1:]) or "@" in core:
        return True  # DynamoDB, SnapStart, Lambda@Edge, AWS
    return core[:1].isupper() and stem(core.lower()) in names


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def name_blanks(text: str, names: set[str]) -> list[Blank]:
    """Whole runs of name words ("AWS Step Functions", "RDS Proxy", "Java 11"), never part of a longer
    capitalised phrase (a title's "… Key Becoming ___") and never the text's first word."""
    words = list(_WORD.finditer(text))
    blanks, run = [], []

    def close(after: int) -> None:
        while run and run[-1].group(0).lower() in _NAME_JOINERS:
            run.pop()
        if run and len(run) <= MAX_ANSWER_WORDS and any(is_name_word(w.group(0), names) for w in run):
            first, last = words.index(run[0]), words.index(run[-1])
            glued = lambda a, b: text[a.end():b.start()].strip() in ("", "-", "–", "—")  # noqa: E731
            previous = words[first - 1].group(0) if first > 0 else ""
            before = bool(previous) and glued(words[first - 1], run[0]) and _capitalised(previous) \
                and (previous.lower() not in STOPWORDS or previous.isupper())
            after_cap = last + 1 < len(words) and glued(run[-1], words[last + 1]) \
                and _capitalised(words[last + 1].group(0))
            start, end = run[0].start(), run[-1].end()
            while end > start and text[end - 1] in ".,'":
                end -= 1
            if not before and not after_cap and start > 0:
                blanks.append(Blank(start, end, "name", 2.0 + 0.2 * len(run)))
        run.clear()

    for n, m in enumerate(words):
        word = m.group(0)
        if run and text[run[-1].end():m.start()].strip():  # punctuation between two names: two names
            close(n)
        number = bool(run) and re.fullmatch(r"\d+(?:\.\d+)*", word.rstrip(".,")) is not None  # Java 11, PEP 517, Route 53
        if is_name_word(word, names) or number or (run and word.lower() in _NAME_JOINERS):
            run.append(m)
        else:
            close(n)
    close(len(words))
    return blanks


def figure_blanks(text: str) -> list[Blank]:
    out = []
    for m in _FIGURE.finditer(text):
        value = m.group(0).rstrip().rstrip(",")
        previous = re.search(r"([\w.]+)\s*$", text[:m.start()])
        if previous and _capitalised(previous.group(1)) and m.start() > previous.end() - 1:
            continue  # "Java 11", "March 24", "Route 53": part of a name or a date
        digits = re.sub(r"\D", "", value)
        if re.fullmatch(r"(19|20)\d\d", value.strip()) and len(digits) == 4:
            continue
        if re.fullmatch(r"\d+\.\d+(?:\.\d+)*", value.strip()):
            continue  # "1.2", "3.9": a version, not a quantity  # a year is rarely what a card should ask (and "in 2019" reads as a date, not a limit)
        if value.strip().isdigit() and len(value.strip()) == 1 and m.end() - m.start() == 1:
            score = 1.5  # a bare single digit ("2 types"): weaker than a figure with its unit
        else:
            score = 3.0
        out.append(Blank(m.start(), m.start() + len(value), "figure", score))
    return out


def term_blank(text: str, label: str, names: set[str]) -> list[Blank]:
    """The thing a sentence defines: "AWS Lambda is a serverless compute service…", or a bold label whose
    text defines it ("Edge Functions: These are code snippets…")."""
    if label and text.startswith(label) and text[len(label):len(label) + 1] == ":":
        rest = text[len(label) + 1:].strip()
        if _DEFINES_LABEL.match(rest) and any(is_name_word(w, names) for w in label.split()):
            return [Blank(0, len(label), "term", 3.5)]
        return []
    m = _DEFINES.match(text)
    if not m:
        return []
    term = m.group("term")
    lead = re.match(r"(?:the|an?)\s+", term, re.I)
    start = lead.end() if lead else 0
    if not any(is_name_word(w, names) for w in term[start:].split()) or POINTS_BACK.match(term):
        return []
    return [Blank(start, len(term), "term", 3.5)]


def command_blanks(text: str) -> list[Blank]:
    """One inline code span in prose ("To add a dependency, run `poetry add`."): the command is the answer,
    so the prompt shows no code."""
    spans = list(_CODE_SPAN.finditer(text))
    if len(spans) != 1:
        return []
    code = spans[0].group(1).strip()
    if not code or len(code.split()) > MAX_ANSWER_WORDS or len(code) > 60:
        return []
    return [Blank(spans[0].start(), spans[0].end(), "command", 2.5)]


def item_blanks(unit: Unit, names: set[str]) -> list[Blank]:
    """An item of a short list of names ("two types of Edge functions: CloudFront Functions; ___")."""
    if unit.kind != "list" or not 2 <= len(unit.items) <= MAX_LIST_ITEMS:
        return []
    out = []
    for item in unit.items:
        words = item.rstrip(".").split()
        if not words or len(words) > MAX_ANSWER_WORDS or not any(is_name_word(w, names) for w in words):
            continue
        at = unit.text.rfind(item.rstrip("."))
        if at > 0:
            out.append(Blank(at, at + len(item.rstrip(".")), "item", 1.8))
    return out[-1:]  # the last item: the others stay as the hint

