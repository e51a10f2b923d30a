"""What users did, kept on this machine: conversations (so a reload loses nothing) and their feedback.

One SQLite file (`APP_DB`, `.notesqa.sqlite3` by default) beside the index folder, never inside it: a
`--rebuild` may delete a damaged index folder, and the conversations and ratings must survive that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, updated REAL NOT NULL, messages TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, conversation TEXT NOT NULL, turn INTEGER NOT NULL,
    question TEXT NOT NULL, history TEXT NOT NULL, answer TEXT NOT NULL, generation INTEGER,
    rating INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    UNIQUE (conversation, turn));
"""
COMMENTS = ("wrong section", "should have refused", "missed part of the answer", "too long")


@dataclass
class Feedback:
    """One rated answer: 1 👍, 0 👎, with what was asked and answered."""

    conversation: str
    turn: int
    question: str
    history: list[dict]
    answer: dict  # qa.answer.Answer.to_dict()
    generation: int | None
    rating: int
    comment: str
    created: float


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


class Records:
    """The SQLite store; safe to share between the app's threads (one connection per call)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path, timeout=10)

    def load_conversation(self, conversation: str) -> list[dict] | None:
        with self._connect() as db:
            row = db.execute("SELECT messages FROM conversations WHERE id = ?", (conversation,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_conversation(self, conversation: str, messages: list[dict]) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO conversations (id, updated, messages) VALUES (?, ?, ?) ON CONFLICT(id) DO "
                       "UPDATE SET updated = excluded.updated, messages = excluded.messages",
                       (conversation, time.time(), json.dumps(messages, ensure_ascii=False)))

    def rate(self, conversation: str, turn: int, *, question: str, history: list[dict], answer: dict,
             generation: int | None, rating: int, comment: str = "") -> None:
        """Record (or change) the rating of one answer of a conversation."""
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO feedback (conversation, turn, question, history, answer, generation, rating, comment, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(conversation, turn) DO UPDATE SET "
                "rating = excluded.rating, comment = excluded.comment, created = excluded.created",
                (conversation, turn, question, json.dumps(history, ensure_ascii=False),
                 json.dumps(answer, ensure_ascii=False), generation, int(rating), comment, time.time()))

    def feedback(self) -> list[Feedback]:
        """Every rating, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT conversation, turn, question, history, answer, generation, rating, comment, "
                              "created FROM feedback ORDER BY created").fetchall()
        return [Feedback(c, t, q, json.loads(h), json.loads(a), g, r, m, at) for c, t, q, h, a, g, r, m, at in rows]

    def counts(self) -> tuple[int, int]:
        """(👍, 👎)."""
        with self._connect() as db:
            up, down = db.execute("SELECT COALESCE(SUM(rating = 1), 0), COALESCE(SUM(rating = 0), 0) "
                                  "FROM feedback").fetchone()
        return int(up), int(down)
