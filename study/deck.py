"""The study deck of a notes folder: its cards made and synced into `APP_DB`, the scope a session covers,
and the queue it asks from (due cards first, then new ones in note order)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ingest.index import NotesCorpus, load_corpus
from qa.settings import Settings
from study.cards import Card, make_cards, section_hash
from study.store import DEFAULT_NEW_PER_DAY, StudyCard, StudyStore, SyncReport

DAY_S = 86400.0


@dataclass(frozen=True)
class Scope:
    """What a study session covers: all notes, one note, one section and those under it, or tags."""

    source: str | None = None
    anchor: str | None = None  # a section: it and its subsections
    tags: tuple[str, ...] = ()

    def covers(self, card: Card) -> bool:
        if self.source and card.source != self.source:
            return False
        if self.anchor and self.anchor not in (card.anchor_path or (card.anchor,)):
            return False
        return not self.tags or bool(set(self.tags) & set(card.tags))

    def describe(self) -> str:
        where = self.source or "all notes"
        if self.anchor:
            where += f"#{self.anchor} and below"
        return where + (f", tagged {', '.join(self.tags)}" if self.tags else "")


@dataclass
class Deck:
    """The notes, their cards and the store they are scheduled in."""

    corpus: NotesCorpus
    cards: list[Card]
    store: StudyStore
    synced: SyncReport = field(default_factory=SyncReport)
    problems: list[str] = field(default_factory=list)  # one sentence each (an unreachable LLM)


def add_llm_questions(cards: list[Card], corpus: NotesCorpus, store: StudyStore, chat, *,
                      timeout_s: float) -> list[str]:
    """The LLM's free-form questions per section, asked once per version of a section (kept in `APP_DB`;
    without `chat`, those already written, so a session without the model never retires them); returns the
    problems met (an unreachable model stops asking, the cloze cards stay)."""
    from qa.llm import LLMUnavailable
    from study.freeform import write_questions

    have = {c.id for c in cards}
    for note in corpus.notes:
        for section in note.content_sections:
            key = section_hash(section)
            found = store.generated(key)
            if found is None and chat is not None:
                try:
                    found = write_questions(chat, section, timeout_s=timeout_s)
                except LLMUnavailable as exc:
                    return [f"No free-form questions this time: {exc}; the cloze cards are all there."]
                store.save_generated(key, found)
            for card in found or []:
                if card.id not in have:
                    cards.append(card)
                    have.add(card.id)
    return []


def open_deck(settings: Settings, *, notes_dir: Path | None = None, store: StudyStore | None = None,
              now: float | None = None, chat=None) -> Deck:
    """Read the notes, make their cards (with `chat`, the LLM's free-form questions too) and sync them into
    `APP_DB` (new cards added, gone ones retired)."""
    corpus = load_corpus(Path(notes_dir or settings.notes_dir), max_bytes=settings.max_file_bytes)
    cards = make_cards(corpus.notes)
    store = store or StudyStore(settings.app_db)
    problems = add_llm_questions(cards, corpus, store, chat, timeout_s=settings.llm_timeout_s)
    report = store.sync(cards, now=now)
    return Deck(corpus, cards, store, report, problems)


@dataclass
class Queue:
    """What a session asks, in order, and how many of each kind there are."""

    cards: list[StudyCard]
    due: int
    new: int
    later: int  # in scope, scheduled after today


def study_queue(store: StudyStore, scope: Scope = Scope(), *, now: float | None = None,
                new_per_day: int = DEFAULT_NEW_PER_DAY) -> Queue:
    """Due cards first (most overdue first), then up to `new_per_day` new ones (minus those already
    started today) in note order."""
    now = time.time() if now is None else now
    cards = [c for c in store.cards() if scope.covers(c.card)]
    due = sorted((c for c in cards if not c.is_new and c.due <= now), key=lambda c: c.due)
    started_today = {r.card_id for r in store.reviews() if r.reviewed >= now - DAY_S}
    fresh = [c for c in cards if c.is_new]
    started = sum(1 for c in cards if c.card.id in started_today and c.reviews == 1)
    new = fresh[:max(0, new_per_day - started)]
    later = sum(1 for c in cards if not c.is_new and c.due > now)
    return Queue(due + new, len(due), len(new), later)


def wait_text(seconds: float) -> str:
    """'under a minute', '10 minutes', '3 hours', '4 days', '2 months'."""
    for size, unit in ((30 * 86400, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size - 0.5:
            n = round(seconds / size)
            return f"{n} {unit}{'s' * (n != 1)}"
    return "under a minute"
