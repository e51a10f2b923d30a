"""Follow-up questions without an LLM: search the question together with the earlier subject."""

from __future__ import annotations

import re

from qa.errors import BadQuestion
from qa.text import STOPWORDS, content_terms, question_names

# A word that points back at something said before ("it", "they", "the latter")…
_REFERENCE = re.compile(
    r"\b(?:it|its(?!\s+own\b)|it's|they|them|their|theirs|this|that|these|those|one|ones|he|she|him|her)\b|"
    r"\bthe (?:same|two|other|others|first|second|former|latter|previous|above)\b", re.I)
# …or a question that only continues the conversation ("and for a group?", "what about on Windows?").
_CONTINUES = re.compile(
    r"^\s*(?:(?:ok|okay|right|cool|thanks|great|so|hmm)\W+)*(?:and|also|what about|how about|but|so|then|or)\b|"
    r"\b(?:then|too|instead|as well|either)\W*$", re.I)
_PARTICLES = frozenset("off on up out in into from to for with away down back over again now then too".split())
MIN_STANDALONE_TERMS = 3
MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20  # earlier turns kept (the newest); follow-ups only ever use the last standalone question
ROLES = ("user", "assistant", "system")
NO_QUESTION = "I couldn't find a question there: type your question in words."
BAD_HISTORY = ('The history must be a list of {"role": "user" | "assistant", "content": "…"} turns, oldest first.')


def clean_question(question: str | None) -> tuple[str, str | None]:
    """The question to answer and a notice if it was trimmed; empty, wordless or non-text input is refused."""
    if question is not None and not isinstance(question, str):
        raise BadQuestion(f"The question must be text, not {type(question).__name__}: write it in quotes.")
    text = " ".join((question or "").split())
    if not text:
        raise BadQuestion("The question is empty: type a question about your notes.")
    if not re.search(r"\w", text):  # emoji, punctuation: nothing to search for
        raise BadQuestion(NO_QUESTION)
    if len(text) > MAX_QUESTION_CHARS:
        return text[:MAX_QUESTION_CHARS], f"The question was trimmed to its first {MAX_QUESTION_CHARS} characters."
    return text, None


def clean_history(history: list[dict] | None) -> list[dict]:
    """The earlier turns to use, checked like a question: {role, content} objects (else `BadQuestion`), the
    newest `MAX_HISTORY_TURNS`, each trimmed to `MAX_QUESTION_CHARS` (a pasted megabyte is never searched)."""
    if history is None:
        return []
    if not isinstance(history, list) or not all(
            isinstance(t, dict) and t.get("role") in ROLES and isinstance(t.get("content"), str) for t in history):
        raise BadQuestion(BAD_HISTORY)
    return [{**t, "content": t["content"][:MAX_QUESTION_CHARS]} for t in history[-MAX_HISTORY_TURNS:]]


def _relative_that(question: str, match: re.Match) -> bool:
    """'a setting that makes…': "that" after a noun and before more words joins a clause, points nowhere."""
    if match.group(0).lower() != "that":
        return False
    before = re.findall(r"[\w']+", question[:match.start()])
    after = re.match(r"\s+([\w']+)", question[match.end():])
    return bool(before) and before[-1].lower() not in STOPWORDS and bool(after) \
        and after.group(1).lower() not in _PARTICLES


def last_user_turns(history: list[dict] | None) -> list[str]:
    """The user's earlier questions, newest first."""
    return [m.get("content", "") for m in reversed(history or []) if m.get("role") == "user" and m.get("content")]


def is_follow_up(question: str, names: set[str] = frozenset()) -> bool:
    """Whether the question needs an earlier turn to be understood: it only continues the conversation,
    or it points back ("it", "they") with nothing in the question itself to point at. Without the notes'
    names to go by, a question of very few words counts as a follow-up too."""
    if _CONTINUES.search(question):
        return True
    reference = next((m for m in _REFERENCE.finditer(question) if not _relative_that(question, m)), None)
    if reference:
        own = question_names(question[:reference.start()], names) if names else content_terms(
            question[:reference.start()])
        return not own
    if names:
        return not question_names(question, names) and len(content_terms(question)) < MIN_STANDALONE_TERMS
    return len(content_terms(question)) < MIN_STANDALONE_TERMS


def condense_query(question: str, history: list[dict] | None, *, names: set[str] = frozenset()) -> str:
    """The query actually searched: the question, after the user's last standalone question when it is a
    follow-up (only that one: earlier follow-ups are never chained in; when every earlier question leaned
    on another, the last one is all there is to go on)."""
    earlier = last_user_turns(history)
    if not earlier or not is_follow_up(question, names):
        return question
    subject = next((turn for turn in earlier if not is_follow_up(turn, names)), earlier[0])
    return f"{subject} {question}"
