"""The question file (`eval/questions.jsonl`): load and validate it before any model is loaded.

One JSON object per line:
    {"id": "q117", "question": "And how much memory can it get?", "answerable": true,
     "reference_anchors": ["15"], "key_facts": [["128 MB"], ["10GB", "10 GB"]], "type": "follow-up",
     "history": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

`reference_anchors` are the sections that hold the answer: an anchor (`15`) when it is unique across
the notes, else `source#anchor` (`aws-notes.md#15`). Every bad line is reported with its number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

QUESTIONS_PATH = Path(__file__).resolve().parent / "questions.jsonl"
TYPES = ("fact", "list", "how/why", "comparison", "follow-up")
REQUIRED = ("id", "question", "answerable", "reference_anchors", "key_facts", "type")
ROLES = ("user", "assistant", "system")


@dataclass(frozen=True)
class EvalItem:
    """One question of the evaluation set; `references` are resolved to `source#anchor`."""

    id: str
    question: str
    answerable: bool
    reference_anchors: tuple[str, ...]
    key_facts: tuple[tuple[str, ...], ...]
    type: str
    history: tuple[dict, ...] = ()
    references: tuple[str, ...] = ()
    line: int = 0
    near_topic: bool = False  # unanswerable, but about something the notes do discuss


class QuestionFileError(ValueError):
    """The question file has bad lines; `errors` holds one message per problem, with its line number."""

    def __init__(self, path: Path | str, errors: list[str]):
        self.path = str(path)
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"The question file {self.path} has {len(errors)} problem(s):\n{shown}{more}")


@dataclass
class AnchorIndex:
    """The sections of the notes an item may reference: anchor → the notes that have it."""

    by_anchor: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_notes(cls, notes: Iterable) -> "AnchorIndex":
        """From parsed notes (`ingest.index.load_corpus(...).notes`); the table of contents does not count."""
        index = cls()
        for note in notes:
            for section in note.content_sections:
                index.by_anchor.setdefault(section.anchor, []).append(note.source)
        return index

    @classmethod
    def from_notes_dir(cls, notes_dir: Path) -> "AnchorIndex":
        from ingest.index import load_corpus

        return cls.from_notes(load_corpus(Path(notes_dir)).notes)

    def resolve(self, ref: str) -> tuple[str | None, str | None]:
        """(`source#anchor`, None) or (None, why it cannot be resolved)."""
        if "#" in ref:
            source, anchor = ref.rsplit("#", 1)
            if source in self.by_anchor.get(anchor, []):
                return ref, None
            return None, f"unknown anchor {ref!r}: no such section in the notes"
        sources = self.by_anchor.get(ref, [])
        if not sources:
            return None, f"unknown anchor {ref!r}: no section of the notes has it"
        if len(sources) > 1:
            return None, f"anchor {ref!r} is in several notes ({', '.join(sources)}): write it as source#anchor"
        return f"{sources[0]}#{ref}", None


def _check_item(row: dict, anchors: AnchorIndex | None) -> tuple[list[str], tuple[str, ...]]:
    """Problems with one parsed line (empty when it is fine) and its resolved references."""
    problems = [f"missing field {name!r}" for name in REQUIRED if name not in row]
    if problems:
        return problems, ()
    if not isinstance(row["id"], str) or not row["id"].strip():
        problems.append("'id' must be a non-empty string")
    if not isinstance(row["question"], str) or not row["question"].strip():
        problems.append("'question' must be a non-empty string")
    if not isinstance(row["answerable"], bool):
        problems.append("'answerable' must be true or false")
    if row["type"] not in TYPES:
        problems.append(f"'type' must be one of {', '.join(TYPES)} (got {row['type']!r})")
    refs = row["reference_anchors"]
    resolved: list[str] = []
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        problems.append("'reference_anchors' must be a list of anchors (strings)")
    else:
        if row["answerable"] is True and not refs:
            problems.append("an answerable item needs at least one reference anchor")
        if row["answerable"] is False and refs:
            problems.append("an unanswerable item cannot have reference anchors")
        for ref in refs:
            if anchors is None:
                resolved.append(ref)
                continue
            url, why = anchors.resolve(ref)
            if why:
                problems.append(why)
            else:
                resolved.append(url)
    facts = row["key_facts"]
    if not isinstance(facts, list) or not all(
            isinstance(f, list) and f and all(isinstance(s, str) and s.strip() for s in f) for f in facts):
        problems.append("'key_facts' must be a list of facts, each a non-empty list of spellings")
    history = row.get("history")
    if history is not None:
        if not isinstance(history, list) or not all(
                isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in history):
            problems.append("'history' must be a list of {\"role\": user|assistant|system, \"content\": text}")
    if row["type"] == "follow-up" and not history:
        problems.append("a follow-up item needs a 'history'")
    return problems, tuple(resolved)


def parse_questions(lines: Iterable[str], anchors: AnchorIndex | None, *, path: str = "questions.jsonl"
                    ) -> list[EvalItem]:
    """Validate every line, then return the items; raise `QuestionFileError` listing every bad line.

    Blank lines are skipped. `anchors=None` skips the anchor check (for tests of the other rules).
    """
    items, errors, seen = [], [], {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: bad JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            errors.append(f"{where}: expected a JSON object, got {type(row).__name__}")
            continue
        problems, refs = _check_item(row, anchors)
        item_id = row.get("id")
        if isinstance(item_id, str) and item_id in seen:
            problems.append(f"duplicate id {item_id!r} (first on line {seen[item_id]})")
        elif isinstance(item_id, str):
            seen[item_id] = number
        if problems:
            label = f" ({item_id})" if isinstance(item_id, str) and item_id else ""
            errors += [f"{where}{label}: {p}" for p in problems]
            continue
        items.append(EvalItem(
            id=row["id"], question=row["question"], answerable=row["answerable"],
            reference_anchors=tuple(row["reference_anchors"]),
            key_facts=tuple(tuple(f) for f in row["key_facts"]), type=row["type"],
            history=tuple(row.get("history") or ()), references=refs, line=number,
            near_topic=bool(row.get("near_topic")),
        ))
    if errors:
        raise QuestionFileError(path, errors)
    if not items:
        raise QuestionFileError(path, ["the file holds no questions"])
    return items


def load_questions(path: Path = QUESTIONS_PATH, anchors: AnchorIndex | None = None) -> list[EvalItem]:
    """Read and validate a question file (see `parse_questions`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(path, [f"cannot read the file ({exc})"]) from exc
    return parse_questions(text.splitlines(), anchors, path=str(path))
