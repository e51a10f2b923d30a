"""`python -m eval.feedback --export FILE [--db PATH]`: users' rated answers as evaluation items to review.

Every 👍 becomes an answerable item whose reference sections and key facts are the answer's citations
(the section and the first words of each quote); every 👎 marked "should have refused" becomes an
unanswerable item. Other 👎 say something is wrong without saying what is right: they are counted,
and listed on the Evaluation page to ask again, but not exported. The file is in the
`eval/questions.jsonl` format, for a person to review, then to add to a question set
(`python -m eval --questions FILE` checks it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from qa.errors import NotesQAError
from qa.records import Feedback, Records

REFUSE = "should have refused"
FACT_WORDS = 6  # a key fact: the first words of the cited quote, as written


def key_fact(quote: str) -> str:
    words = re.sub(r"[*_`>\[\]|]", " ", quote).split()
    return " ".join(words[:FACT_WORDS]).rstrip(".,;:")


def to_item(f: Feedback, number: int) -> dict | None:
    """One rating as an evaluation item, or None when it does not say what the right answer is."""
    item = {"id": f"fb{number:03d}", "question": f.question, "type": "follow-up" if f.history else "fact"}
    if f.history:
        item["history"] = f.history
    if f.rating == 1 and f.answer.get("citations") and not f.answer.get("abstained"):
        cited = f.answer["citations"]
        # The key fact is the start of what the user saw and approved: the sentence shown for each citation
        # (a list's quote starts with its markup), else the quote.
        shown = {s.get("citation"): s.get("text", "") for s in f.answer.get("sentences", [])}
        facts = [key_fact(shown.get(c.get("n")) or c["quote"]) for c in cited]
        item |= {"answerable": True, "reference_anchors": list(dict.fromkeys(c["url"] for c in cited)),
                 "key_facts": [[fact] for fact in facts if fact]}
        return item if item["key_facts"] else None
    if f.rating == 0 and f.comment == REFUSE:
        return item | {"answerable": False, "reference_anchors": [], "key_facts": []}
    return None


def export(records: Records, path: Path) -> tuple[int, int]:
    """Write the exportable ratings to `path`; (written, left out)."""
    rows, left = [], 0
    for f in records.feedback():
        item = to_item(f, len(rows) + 1)
        if item is None:
            left += 1
        else:
            rows.append(item)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows), left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.feedback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, metavar="FILE", help="where to write the items")
    parser.add_argument("--db", type=Path, metavar="PATH", help="the app's store (default APP_DB)")
    args = parser.parse_args(argv)
    from qa.settings import load_settings

    db = args.db or load_settings().app_db
    if not Path(db).is_file():
        print(f"error: there is no feedback store at {db}: rate answers in the app first (or pass --db).",
              file=sys.stderr)
        return 2
    try:
        records = Records(Path(db))
        written, left = export(records, args.export)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot write {args.export} ({exc.strerror or exc}): give --export a file in a folder you "
              "can write.", file=sys.stderr)
        return 2
    damaged = f"; {records.unreadable} damaged ratings skipped" if records.unreadable else ""
    print(f"{written} rated questions written to {args.export} ({left} left out: a 👎 that does not say what "
          f"the right answer is{damaged}). Review them, then: python -m eval --questions {args.export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
