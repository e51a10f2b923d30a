"""Study cards, their FSRS schedules and review logs, in the app's SQLite file (`APP_DB`) beside the
conversations: re-indexing or rebuilding the Chroma index never touches them.

A card's id comes from its source, quote and answer (study/cards.py), so when the notes change the cards
whose quote is unchanged keep their schedule and history; cards whose quote is gone are retired (kept,
with their reviews, and shown again if the quote comes back), never deleted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler

from contextlib import contextmanager

from qa.errors import NotesQAError, RecordsUnavailable
from qa.records import NOT_KEPT, Records
from study.cards import Card

SCHEMA = """
CREATE TABLE IF NOT EXISTS study_cards (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, anchor TEXT NOT NULL, card TEXT NOT NULL, fsrs TEXT NOT NULL,
    due REAL NOT NULL, reviewed INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, retired REAL);
CREATE TABLE IF NOT EXISTS study_reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, card TEXT NOT NULL, rating INTEGER NOT NULL, verdict TEXT NOT NULL,
    typed TEXT NOT NULL, reviewed REAL NOT NULL, retrievability REAL, due REAL NOT NULL);
CREATE INDEX IF NOT EXISTS study_reviews_card ON study_reviews (card);
CREATE TABLE IF NOT EXISTS study_generated (section_hash TEXT PRIMARY KEY, cards TEXT NOT NULL, created REAL NOT NULL);
"""
RATINGS = {"again": Rating.Again, "hard": Rating.Hard, "good": Rating.Good, "easy": Rating.Easy}
DEFAULT_NEW_PER_DAY = 20  # new cards shown per day, after the due ones (as Anki does)
DEFAULT_DESIRED_RETENTION = 0.9


class CardGone(NotesQAError):
    """The card's passage was removed from the notes (or never existed): its review is not recorded."""


@dataclass
class StudyCard:
    """A card with its schedule: `state` is FSRS's (new, learning, review, relearning)."""

    card: Card
    due: float
    reviews: int
    retired: float | None = None
    fsrs: FsrsCard | None = field(default=None, repr=False)

    @property
    def is_new(self) -> bool:
        return self.reviews == 0


@dataclass
class SyncReport:
    """What a sync with the notes did to the stored cards."""

    added: int = 0
    kept: int = 0
    moved: int = 0  # same quote, new address or heading (a heading renamed, a section moved)
    retired: int = 0
    revived: int = 0

    def summary(self) -> str:
        parts = [f"{self.added} new", f"{self.kept + self.moved} kept"]
        if self.retired:
            parts.append(f"{self.retired} retired (their passages left the notes)")
        if self.revived:
            parts.append(f"{self.revived} back")
        return ", ".join(parts)


@dataclass
class ReviewResult:
    """One recorded review: when the card is due next."""

    card_id: str
    rating: str
    due: float
    interval_s: float


@dataclass(frozen=True)
class Review:
    """One row of the review log."""

    card_id: str
    rating: int
    verdict: str
    reviewed: float
    retrievability: float | None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _card_from_dict(data: dict) -> Card:
    data = dict(data)
    for key in ("heading_path", "anchor_path", "tags"):
        data[key] = tuple(data.get(key) or ())
    return Card(**data)


_CARD_COLUMNS = "card, fsrs, due, reviewed, retired"


def _study_card(row: tuple) -> StudyCard:
    """A `SELECT {_CARD_COLUMNS}` row as a card with its schedule."""
    card, fsrs, due, reviews, retired = row
    return StudyCard(_card_from_dict(json.loads(card)), due, reviews, retired, FsrsCard.from_json(fsrs))


class StudyStore(Records):
    """Cards and reviews in `APP_DB` (the same file and the same one-sentence errors as conversations)."""

    def __init__(self, path, *, desired_retention: float = DEFAULT_DESIRED_RETENTION, fuzz: bool = True):
        super().__init__(path)
        with self._lock, self._connect() as db:
            db.executescript(SCHEMA)
        self.scheduler = Scheduler(desired_retention=desired_retention, enable_fuzzing=fuzz)

    @contextmanager
    def _connect(self):
        """The conversations' connection, with messages that say what a bad file means for studying."""
        try:
            with super()._connect() as db:
                yield db
        except RecordsUnavailable as exc:
            raise RecordsUnavailable(str(exc).replace(
                NOT_KEPT, "study cards and reviews cannot be kept until it is fixed")) from exc

    def sync(self, cards: list[Card], *, now: float | None = None) -> SyncReport:
        """Make the stored cards those of the notes: add new ones, update addresses, retire the gone."""
        now = time.time() if now is None else now
        report = SyncReport()
        fresh = {c.id: c for c in cards}
        with self._lock, self._connect() as db:
            stored = {row[0]: row[1:] for row in db.execute("SELECT id, card, retired FROM study_cards")}
            for cid, card in fresh.items():
                text = json.dumps(card.to_dict(), ensure_ascii=False)
                if cid not in stored:
                    new = FsrsCard(card_id=int(cid[:12], 16), due=_dt(now))
                    db.execute("INSERT INTO study_cards (id, source, anchor, card, fsrs, due, created) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)", (cid, card.source, card.anchor, text, new.to_json(),
                                                                 now, now))
                    report.added += 1
                    continue
                old_text, retired = stored[cid]
                if retired is not None:
                    report.revived += 1
                elif old_text == text:
                    report.kept += 1
                    continue
                else:
                    report.moved += 1
                db.execute("UPDATE study_cards SET source = ?, anchor = ?, card = ?, retired = NULL WHERE id = ?",
                           (card.source, card.anchor, text, cid))
            gone = [cid for cid, (_, retired) in stored.items() if cid not in fresh and retired is None]
            db.executemany("UPDATE study_cards SET retired = ? WHERE id = ?", [(now, cid) for cid in gone])
            report.retired = len(gone)
        return report

    def cards(self, *, include_retired: bool = False) -> list[StudyCard]:
        """Every stored card with its schedule, in note order (retired ones only when asked)."""
        where = "" if include_retired else " WHERE retired IS NULL"
        with self._connect() as db:
            rows = db.execute(f"SELECT {_CARD_COLUMNS} FROM study_cards{where} ORDER BY created, rowid").fetchall()
        return [_study_card(row) for row in rows]

    def card(self, card_id: str) -> StudyCard | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_CARD_COLUMNS} FROM study_cards WHERE id = ?", (card_id,)).fetchone()
        return None if row is None else _study_card(row)

    def review(self, card_id: str, rating: str, *, verdict: str = "", typed: str = "",
               now: float | None = None) -> ReviewResult:
        """Rate a card (again | hard | good | easy) and schedule it with FSRS; `CardGone` when its passage
        has left the notes since it was shown."""
        now = time.time() if now is None else now
        if rating not in RATINGS:
            raise NotesQAError(f"The rating {rating!r} is not one of {', '.join(RATINGS)}: pick one of those.")
        with self._lock, self._connect() as db:
            row = db.execute("SELECT fsrs, retired FROM study_cards WHERE id = ?", (card_id,)).fetchone()
            if row is None or row[1] is not None:
                raise CardGone("This card's passage is no longer in your notes (it was edited or removed), so the "
                               "review was not recorded: go on with the next card.")
            before = FsrsCard.from_json(row[0])
            recall = (self.scheduler.get_card_retrievability(before, _dt(now))
                      if before.last_review is not None else None)
            after, _ = self.scheduler.review_card(before, RATINGS[rating], review_datetime=_dt(now))
            due = after.due.timestamp()
            db.execute("UPDATE study_cards SET fsrs = ?, due = ?, reviewed = reviewed + 1 WHERE id = ?",
                       (after.to_json(), due, card_id))
            db.execute("INSERT INTO study_reviews (card, rating, verdict, typed, reviewed, retrievability, due) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (card_id, int(RATINGS[rating]), verdict, typed, now, recall, due))
        return ReviewResult(card_id, rating, due, due - now)

    def reviews(self) -> list[Review]:
        """The review log, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT card, rating, verdict, reviewed, retrievability FROM study_reviews "
                              "ORDER BY reviewed, id").fetchall()
        return [Review(*row) for row in rows]

    def generated(self, section_hash: str) -> list[Card] | None:
        """The free-form cards the LLM wrote for this version of a section (None: not asked yet)."""
        with self._connect() as db:
            row = db.execute("SELECT cards FROM study_generated WHERE section_hash = ?", (section_hash,)).fetchone()
        return None if row is None else [_card_from_dict(c) for c in json.loads(row[0])]

    def save_generated(self, section_hash: str, cards: list[Card]) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT OR REPLACE INTO study_generated (section_hash, cards, created) VALUES (?, ?, ?)",
                       (section_hash, json.dumps([c.to_dict() for c in cards], ensure_ascii=False), time.time()))

    def retrievability(self, card: StudyCard, *, now: float | None = None) -> float | None:
        """FSRS's chance of recalling the card now; None for a card never reviewed."""
        if card.fsrs is None or card.fsrs.last_review is None:
            return None
        return float(self.scheduler.get_card_retrievability(card.fsrs, _dt(time.time() if now is None else now)))
