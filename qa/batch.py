"""`python -m qa batch`: one JSON line out per JSON line in, in order, with the same `id`.

A bad line (not JSON, a question that is not text, a malformed history) gets its own error object and
the next lines are still answered. A Chroma server that stops answering is waited for, up to
`CHROMA_RETRY_S`, so a restart in the middle of a batch loses no question.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import IO

from qa.errors import BadQuestion, NotesQAError, StoreUnavailable

RETRY_PAUSE_S = 0.5


EXPECTED = '{"id": "q1", "question": "…", "history": [...]}'


def parse_line(line: str, number: int) -> dict:
    """One input line as a JSON object (`BadQuestion` says what is wrong with it)."""
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise BadQuestion(f"line {number}: not JSON ({exc}); write one object per line, like {EXPECTED}") from None
    if not isinstance(item, dict):
        raise BadQuestion(f"line {number}: expected an object, like {EXPECTED}")
    return item


class StoreWaiter:
    """Retries a call while the store is unavailable, up to `window_s`; once a window has run out, later calls
    get one try each (no new wait) until one succeeds, so a server that is gone for good fails fast."""

    def __init__(self, window_s: float, *, sleep: Callable[[float], None] = time.sleep):
        self.window_s = window_s
        self.sleep = sleep
        self.gave_up = False

    def call(self, fn: Callable[[], object]) -> object:
        deadline = time.monotonic() + (0.0 if self.gave_up else self.window_s)
        while True:
            try:
                result = fn()
            except StoreUnavailable:
                if time.monotonic() >= deadline:
                    self.gave_up = True
                    raise
                self.sleep(RETRY_PAUSE_S)
                continue
            self.gave_up = False
            return result


def answer_line(qa, item: dict, number: int, waiter: StoreWaiter, options: dict) -> dict:
    """The output object of one parsed input line: the answer, or an `error` in one sentence."""
    out = {"id": item.get("id")}
    if "question" not in item:
        return {**out, "error": f'line {number}: no "question"; write one object per line, like {EXPECTED}'}
    try:
        answer = waiter.call(lambda: qa.answer(item["question"], history=item.get("history"), **options))
    except NotesQAError as exc:
        return {**out, "question": item.get("question"), "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one line's failure must not lose the lines after it
        return {**out, "question": item.get("question"),
                "error": f"Answering failed unexpectedly ({type(exc).__name__}: {str(exc)[:160]})."}
    return {**out, **answer.to_dict()}


def run_batch(qa, options: dict, *, retry_s: float, lines: IO[str] | None = None, out: IO[str] | None = None) -> int:
    """Answer every line of `lines` (stdin); exit 0, or 2 when the store stayed unavailable for some line."""
    waiter = StoreWaiter(retry_s)
    out = out or sys.stdout
    store_failed = False
    for number, line in enumerate(lines or sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            result = answer_line(qa, parse_line(line, number), number, waiter, options)
        except BadQuestion as exc:
            result = {"id": None, "error": str(exc)}
        store_failed |= waiter.gave_up and "error" in result
        print(json.dumps(result, ensure_ascii=False), file=out, flush=True)
    return StoreUnavailable.exit_code if store_failed else 0
