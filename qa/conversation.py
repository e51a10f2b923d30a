"""Follow-up questions without an LLM: search the question together with the earlier subject."""

from __future__ import annotations

import re

from qa.errors import BadQuestion
from qa.text import content_terms, question_names

_ANAPHORA = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|she|one|ones|there)\b|"
    r"\bthe (same|two|other|others|first|second|former|latter|previous|above)\b|"
    r"^\s*(?:(?:ok|okay|right|cool|thanks|great)\W+)?(and|also|what about|how about|so|then|but)\b", re.I)
MIN_STANDALONE_TERMS = 3
MAX_QUESTION_CHARS = 2000


def clean_question(question: str | None) -> tuple[str, str | None]:
    """The question to answer and a notice if it was trimmed; empty questions are refused."""
    text = " ".join((question or "").split())
    if not text:
        raise BadQuestion("The question is empty: type a question about your notes.")
    if len(text) > MAX_QUESTION_CHARS:
        return text[:MAX_QUESTION_CHARS], f"The question was trimmed to its first {MAX_QUESTION_CHARS} characters."
    return text, None


def last_user_turns(history: list[dict] | None) -> list[str]:
    """The user's earlier questions, newest first."""
    return [m.get("content", "") for m in reversed(history or []) if m.get("role") == "user" and m.get("content")]


def is_follow_up(question: str, names: set[str] = frozenset()) -> bool:
    """Leans on an earlier turn: a pronoun or "and…/what about…"; else, given the notes' names, a
    question naming nothing (standalone questions name their subject), or one with too few terms."""
    if _ANAPHORA.search(question):
        return True
    if names:
        return not question_names(question, names)
    return len(content_terms(question)) < MIN_STANDALONE_TERMS


def condense_query(question: str, history: list[dict] | None, *, names: set[str] = frozenset()) -> str:
    """The query actually searched: the question, plus the subject of the last standalone user turn."""
    if not history or not is_follow_up(question, names):
        return question
    subject = []
    for turn in last_user_turns(history):
        subject.insert(0, turn)
        if not is_follow_up(turn, names):
            break
    return " ".join(subject + [question]) if subject else question
