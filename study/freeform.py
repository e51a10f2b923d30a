"""Free-form questions per section, written by the configured LLM (LLM_PROVIDER) and kept only when the
answer is found in the quote the model gave, and that quote is in the section word for word; typed answers
to them are graded by the same model, falling back to the cloze grader when it cannot be reached."""

from __future__ import annotations

import json
import re

from langchain_core.messages import HumanMessage, SystemMessage

from notes.model import Section
from qa.llm import LLMUnavailable, stream_tokens
from qa.text import content_terms, numbers_in
from study.cards import Card, card_id, section_hash
from study.grade import Grade, grade_answer

DEFAULT_QUESTIONS_PER_SECTION = 3
DEFAULT_TIMEOUT_S = 60.0
MIN_SECTION_WORDS = 25  # a shorter section gives its cloze cards only
WRITE_PROMPT = (
    "You write exam flashcards from a student's notes. From the section below, write up to {n} questions that "
    "each have one short answer stated in the section. Reply with one JSON object per line and nothing else: "
    '{{"question": "...", "answer": "...", "quote": "..."}} where quote is the sentence of the section, copied '
    "exactly, that states the answer.")
JUDGE_PROMPT = (
    "A student answered a flashcard. Question: {question}\nExpected answer: {answer}\nStudent's answer: {typed}\n"
    "Reply with one word: RIGHT if it means the same as the expected answer, CLOSE if partly, WRONG otherwise.")


def _squash(text: str) -> str:
    return " ".join(re.sub(r"[*_`]", "", text).split()).lower()


def answer_in_quote(answer: str, quote: str) -> bool:
    """Every word and figure of the answer appears in the quote (the check that keeps a generated card)."""
    terms = content_terms(answer)
    return bool(terms) and set(terms) <= set(content_terms(quote)) and numbers_in(answer) <= numbers_in(quote)


def parse_questions(reply: str, section: Section) -> list[Card]:
    """The model's JSON lines as cards; lines that are not JSON, quote what the section does not say, or
    answer with what their quote does not hold are dropped."""
    cards = []
    body = _squash(section.text)
    for line in reply.splitlines():
        line = line.strip().strip(",")
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict):
            continue
        question, answer, quote = (str(item.get(k) or "").strip() for k in ("question", "answer", "quote"))
        if not question.endswith("?") or not answer or len(answer.split()) > 12 or not quote:
            continue
        if _squash(quote) not in body or not answer_in_quote(answer, quote):
            continue
        cards.append(Card(card_id(section.source, quote, answer), section.source, section.anchor, section.breadcrumb,
                          question, answer, quote, "question", section_hash(section), section.heading_path,
                          section.anchor_path, section.title, section.tags))
    return cards


def write_questions(chat, section: Section, *, n: int = DEFAULT_QUESTIONS_PER_SECTION,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Card]:
    """Ask the model for questions on one section; `LLMUnavailable` when it cannot be reached."""
    if len(section.text.split()) < MIN_SECTION_WORDS:
        return []
    messages = [SystemMessage(WRITE_PROMPT.format(n=n)),
                HumanMessage(f"Section: {section.breadcrumb}\n\n{section.text}")]
    return parse_questions("".join(stream_tokens(chat, messages, timeout_s=timeout_s)), section)[:n]


def grade_card(card: Card, typed: str | None, *, chat=None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Grade:
    """A cloze answer by matching; a free-form one by the model when there is one (else by matching too)."""
    grade = grade_answer(typed, card.answer)
    if card.kind != "question" or chat is None or grade.verdict in ("right", "blank"):
        return grade
    prompt = JUDGE_PROMPT.format(question=card.prompt, answer=card.answer, typed=grade.typed)
    try:
        reply = "".join(stream_tokens(chat, [HumanMessage(prompt)], timeout_s=timeout_s)).strip().upper()
    except LLMUnavailable:
        return grade
    verdict = next((v for v in ("RIGHT", "CLOSE", "WRONG") if reply.startswith(v)), None)
    if verdict is None:
        return grade
    suggested = {"RIGHT": "good", "CLOSE": "hard", "WRONG": "again"}[verdict]
    message = {"RIGHT": "Right (judged by the language model).",
               "CLOSE": f"Partly (judged by the language model): the notes say “{card.answer}”.",
               "WRONG": f"Not quite (judged by the language model): the notes say “{card.answer}”."}[verdict]
    return Grade(verdict.lower(), suggested, message, grade.typed)
