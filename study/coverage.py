"""What has been studied: per section, its cards, their reviews and FSRS retrievability, and how often the
chat was asked about it or cited it; and, per day, reviews and the share remembered."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime

from ingest.index import NotesCorpus
from study.store import StudyStore

AGAIN = 1
RECALLED_FROM = 2  # ratings Hard, Good and Easy count as remembered; Again does not


@dataclass
class SectionCoverage:
    """One section's figures; `retrievability` is the mean over its reviewed cards (None: never studied), a
    card last rated Again counting 0."""

    source: str
    anchor: str
    heading: str
    level: int
    cards: int
    reviewed_cards: int
    reviews: int
    retrievability: float | None
    asked: int  # chat questions whose best section this was
    cited: int  # chat answers that cited it

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.retrievability is not None:
            data["retrievability"] = round(self.retrievability, 3)
        return data


@dataclass
class DayStudy:
    """Reviews on one day and the share of them remembered."""

    day: str
    reviews: int
    remembered: float


def chat_counts(store: StudyStore) -> tuple[Counter, Counter]:
    """(asked, cited) per `source#anchor`, from the stored conversations (damaged ones are skipped)."""
    asked, cited = Counter(), Counter()
    with store._connect() as db:
        rows = db.execute("SELECT messages FROM conversations").fetchall()
    for (text,) in rows:
        try:
            messages = json.loads(text)
        except (TypeError, ValueError):
            continue
        for m in messages if isinstance(messages, list) else []:
            answer = m.get("answer") if isinstance(m, dict) else None
            if not isinstance(answer, dict):
                continue
            retrieved = answer.get("retrieved") or []
            if retrieved and isinstance(retrieved[0], dict):
                asked[f"{retrieved[0].get('source')}#{retrieved[0].get('anchor')}"] += 1
            for c in {f"{c.get('source')}#{c.get('anchor')}" for c in answer.get("citations") or []
                      if isinstance(c, dict)}:
                cited[c] += 1
    return asked, cited


def section_coverage(corpus: NotesCorpus, store: StudyStore, *, now: float | None = None) -> list[SectionCoverage]:
    """Every section of the notes, in note order, with what was studied and asked of it."""
    now = time.time() if now is None else now
    by_section: dict[str, list] = {}
    for card in store.cards():
        by_section.setdefault(f"{card.card.source}#{card.card.anchor}", []).append(card)
    log = store.reviews()
    reviews = Counter(r.card_id for r in log)
    last = {r.card_id: r.rating for r in log}  # the log is oldest first: the last rating wins
    asked, cited = chat_counts(store)
    out = []
    for note in corpus.notes:
        for s in note.content_sections:
            key = f"{s.source}#{s.anchor}"
            cards = by_section.get(key, [])
            # FSRS puts retrievability at 1.0 right after any review; a card just answered wrong (Again) is
            # not remembered, so it counts as 0 until it is answered right again.
            recall = [0.0 if last.get(c.card.id) == AGAIN else r
                      for c in cards if (r := store.retrievability(c, now=now)) is not None]
            out.append(SectionCoverage(
                s.source, s.anchor, s.heading, s.level, len(cards), len(recall),
                sum(reviews[c.card.id] for c in cards), sum(recall) / len(recall) if recall else None,
                asked[key], cited[key]))
    return out


def study_days(store: StudyStore) -> list[DayStudy]:
    """Reviews per day (local time) and the share rated Hard or better, oldest first."""
    days: dict[str, list[int]] = {}
    for r in store.reviews():
        days.setdefault(datetime.fromtimestamp(r.reviewed).strftime("%Y-%m-%d"), []).append(r.rating)
    return [DayStudy(day, len(ratings), sum(r >= RECALLED_FROM for r in ratings) / len(ratings))
            for day, ratings in sorted(days.items())]
