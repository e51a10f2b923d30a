"""Example questions drawn from the user's own notes: their headings, asked as a new user would."""

from __future__ import annotations

import re
from pathlib import Path

from notes.model import ParsedNote

DEFAULT_EXAMPLES = 3
DEFAULT_MAX_WORDS = 6  # longer headings read badly inside a question
DEFAULT_MAX_NOTES = 50  # a big folder: the first notes are plenty to draw from
DEFAULT_TEMPLATE = "Tell me about {heading}"


def example_heading(heading: str, *, max_words: int = DEFAULT_MAX_WORDS) -> str | None:
    """A heading fit to ask about ('Use Cases:' → 'Use Cases'), or None (code, too long, no words)."""
    text = " ".join(heading.split()).rstrip(":.;,- ").strip()
    if "`" in text or not re.search(r"[^\W\d_]{3}", text) or len(text.split()) > max_words:
        return None
    return text


def example_questions(notes: list[ParsedNote], *, count: int = DEFAULT_EXAMPLES,
                      template: str = DEFAULT_TEMPLATE) -> list[str]:
    """`count` questions about headings of these notes, spread over them (the same ones every time).

    A heading that is a question already is asked as written; another becomes `template`.

    Example: a note with '## Rolling updates' gives 'Tell me about Rolling updates'.
    """
    candidates = []
    for note in notes:
        for section in note.content_sections:
            heading = example_heading(section.heading) if section.level > 1 else None
            if heading and heading.lower() != note.title.lower():
                candidates.append(heading if heading.endswith("?") else template.format(heading=heading))
    candidates = list(dict.fromkeys(candidates))
    if len(candidates) <= count:
        return candidates
    step = len(candidates) / count
    return [candidates[int(step * n + step / 2)] for n in range(count)]


def notes_examples(notes_dir: Path, *, count: int = DEFAULT_EXAMPLES, max_notes: int = DEFAULT_MAX_NOTES,
                   max_bytes: int = 5 * 1024 * 1024) -> list[str]:
    """Example questions from the notes in `notes_dir` (notes that cannot be read are passed over)."""
    from qa.errors import NotesQAError
    from ui.notes import list_notes, load_note

    parsed = []
    for source in list_notes(notes_dir)[:max_notes]:
        try:
            parsed.append(load_note(notes_dir, source, max_bytes=max_bytes))
        except NotesQAError:
            continue
    return example_questions(parsed, count=count)
