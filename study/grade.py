"""Grading a typed answer before the user rates the card: normalised match, then a fuzzy one for typos.

Figures must match exactly ("15 minutes" is not "16 minutes", whatever the string distance says);
names and terms may carry a typo or two (rapidfuzz's ratio).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

MAX_TYPED_CHARS = 500  # an answer is a few words: a pasted page is cut, never compared whole
DEFAULT_CLOSE_RATIO = 85.0  # rapidfuzz ratio (0-100) from which a wrong spelling still counts
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
SUGGESTED = {"right": "good", "close": "hard", "wrong": "again", "blank": "again"}


@dataclass
class Grade:
    """`verdict`: right | close | wrong | blank; `suggested` is the rating to offer first."""

    verdict: str
    suggested: str
    message: str
    typed: str = ""


def normalise(text: str) -> str:
    """Lower case, no markup, articles or punctuation; "10 GB" and "10GB" alike; "1,000" is "1000"."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.casefold().replace("`", " "))
    text = re.sub(r"[^\w\s.%$@&+/-]", " ", text)
    text = re.sub(r"(?<=\d)\s+(?=[a-z%])", "", text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.replace(" .", " ").strip(" .").split())


def accepted_answers(answer: str) -> list[str]:
    """The answer, and its parts when it gives an alternative in brackets: "--all (-a)", "RCU (Read…)"."""
    out = [answer]
    m = re.fullmatch(r"\s*(.+?)\s*\((.+)\)\s*", answer)
    if m:
        out += [m.group(1), m.group(2)]
    return out


def grade_answer(typed: str | None, answer: str, *, close_ratio: float = DEFAULT_CLOSE_RATIO) -> Grade:
    """How the typed answer compares with the card's answer."""
    typed = (typed or "").strip()
    if not typed:
        return Grade("blank", SUGGESTED["blank"], "No answer typed: here is the answer; rate how well you knew it.")
    note = ""
    if len(typed) > MAX_TYPED_CHARS:
        typed, note = typed[:MAX_TYPED_CHARS], f" (only your first {MAX_TYPED_CHARS} characters were read)"
    mine = normalise(typed)
    best, verdict = 0.0, "wrong"
    for option in accepted_answers(answer):
        theirs = normalise(option)
        if not theirs:
            continue
        if mine == theirs:
            return Grade("right", SUGGESTED["right"], "Right." + note, typed)
        if set(_NUMBER.findall(theirs)) != set(_NUMBER.findall(mine)):
            continue  # a different figure is wrong however close the spelling
        best = max(best, fuzz.ratio(mine, theirs))
        if best >= close_ratio or (len(theirs) > 3 and theirs in mine.split(" ") + [mine]):
            verdict = "close"
    if verdict == "close":
        return Grade("close", SUGGESTED["close"], f"Nearly: the notes say “{answer}”." + note, typed)
    return Grade("wrong", SUGGESTED["wrong"], f"Not quite: the notes say “{answer}”." + note, typed)
