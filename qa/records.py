"""What users did, kept on this machine: conversations (so a reload loses nothing) and their feedback.

One SQLite file (`APP_DB`, `.notesqa.sqlite3` by default) beside the index folder, never inside it: a
`--rebuild` may delete a damaged index folder, and the conversations and ratings must survive that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qa.errors import RecordsUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, updated REAL NOT NULL, messages TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, conversation TEXT NOT NULL, turn INTEGER NOT NULL,
    question TEXT NOT NULL, history TEXT NOT NULL, answer TEXT NOT NULL, generation INTEGER,
    rating INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    UNIQUE (conversation, turn));
"""
COMMENTS = ("wrong section", "should have refused", "missed part of the answer", "too long")
COLUMNS = {"conversations": {"id", "updated", "messages"},
           "feedback": {"id", "conversation", "turn", "question", "history", "answer", "generation", "rating",
                        "comment", "created"},
           # Study mode's cards and reviews share the file (study/store.py keeps their schema).
           "study_cards": {"id", "source", "anchor", "card", "fsrs", "due", "reviewed", "created", "retired"},
           "study_reviews": {"id", "card", "rating", "verdict", "typed", "reviewed", "retrievability", "due"},
           "study_generated": {"section_hash", "cards", "created"}}
NOT_KEPT = "answers still work, they are just not kept"


def explain_failure(path: Path, exc: sqlite3.Error) -> RecordsUnavailable:
    """One sentence for a SQLite error on `APP_DB`: what is wrong with the file and what to do."""
    reason = str(exc)
    if "readonly" in reason or "read-only" in reason:
        problem, fix = "is read-only", "make it writable or set APP_DB to another file"
    elif "not a database" in reason:
        problem, fix = "is not a SQLite database", "set APP_DB to another file (it is created)"
    else:
        problem, fix = f"cannot be used ({reason})", "check it or set APP_DB to another file"
    return RecordsUnavailable(f"The conversations file {path} (APP_DB) {problem}: {fix}; {NOT_KEPT}.")


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
    """An unguessable id (128 random bits): a conversation's address is all it takes to read it."""
    return secrets.token_urlsafe(16)


class Records:
    """The SQLite store; safe to share between the app's threads (one connection per call). Every method
    raises `RecordsUnavailable` (one sentence) when the file cannot be used."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.unreadable = 0  # ratings the last `feedback()` left out (a damaged row)
        with self._connect() as db:
            self._check_tables(db)
            db.executescript(SCHEMA)

    def _check_tables(self, db: sqlite3.Connection) -> None:
        """Refuse a file that holds something else: writing our tables into it would mix two programs' data."""
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                 if not n.startswith("sqlite_")]
        other = [n for n in names if n not in COLUMNS or not COLUMNS[n] <= {
            row[1] for row in db.execute(f"PRAGMA table_info({json.dumps(n)})")}]
        if other:
            raise RecordsUnavailable(
                f"The file {self.path} set as APP_DB holds other data (tables {', '.join(sorted(other)[:5])}): set "
                f"APP_DB to a new file (it is created); {NOT_KEPT}.")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed on success); SQLite errors become one sentence."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise RecordsUnavailable(f"The conversations file {self.path} (APP_DB) cannot be opened ({exc}): set "
                                     f"APP_DB to a file in a folder you can write; {NOT_KEPT}.") from exc
        try:
            with db:
                yield db
        except sqlite3.Error as exc:
            raise explain_failure(self.path, exc) from exc
        finally:
            db.close()

    def load_conversation(self, conversation: str) -> list[dict] | None:
        """The messages of a conversation, or None when there is none; a damaged one is one sentence."""
        with self._connect() as db:
            row = db.execute("SELECT messages FROM conversations WHERE id = ?", (conversation,)).fetchone()
        if row is None:
            return None
        try:
            messages = json.loads(row[0])
        except (TypeError, ValueError):
            messages = None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise RecordsUnavailable(f"The conversation {conversation} in {self.path} (APP_DB) is damaged and cannot "
                                     "be shown: it starts over here, in a new conversation (the damaged one is left as it is).")
        return messages

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
        """Every readable rating, oldest first; damaged rows are left out and counted in `unreadable`."""
        with self._connect() as db:
            rows = db.execute("SELECT conversation, turn, question, history, answer, generation, rating, comment, "
                              "created FROM feedback ORDER BY created").fetchall()
        out = []
        for c, t, q, h, a, g, r, m, at in rows:
            try:
                history, answer = json.loads(h), json.loads(a)
            except (TypeError, ValueError):
                continue
            if isinstance(history, list) and isinstance(answer, dict) and isinstance(q, str):
                out.append(Feedback(c, t, q, history, answer, g, r, m, at))
        self.unreadable = len(rows) - len(out)
        return out

    def counts(self) -> tuple[int, int]:
        """(👍, 👎)."""
        with self._connect() as db:
            up, down = db.execute("SELECT COALESCE(SUM(rating = 1), 0), COALESCE(SUM(rating = 0), 0) "
                                  "FROM feedback").fetchone()
        return int(up), int(down)
