"""`python -m study cards --json [--notes DIR]`, `python -m study quiz`, `python -m study coverage --json`
and `python -m study export (--apkg FILE | --csv FILE)`: study mode from the terminal (study/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa.errors import NotesQAError

RATING_KEYS = {"1": "again", "2": "hard", "3": "good", "4": "easy", "": None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m study", description="Cards from your notes, scheduled.")
    sub = parser.add_subparsers(dest="command", required=True)
    cards = sub.add_parser("cards", help="print the cards the notes give")
    cards.add_argument("--json", action="store_true", help="one JSON object per line")
    quiz = sub.add_parser("quiz", help="a study session in the terminal (due cards first)")
    quiz.add_argument("--limit", type=int, default=20, help="cards to ask at most (default 20)")
    coverage = sub.add_parser("coverage", help="per section: cards, reviews, retrievability, chat questions")
    coverage.add_argument("--json", action="store_true", help="one JSON object per line")
    export = sub.add_parser("export", help="the deck as an Anki package or CSV")
    export.add_argument("--apkg", type=Path, metavar="FILE", help="write an Anki package (.apkg)")
    export.add_argument("--csv", type=Path, metavar="FILE", help="write CSV")
    export.add_argument("--app-url", help="where the app runs, for the links back (default APP_URL)")
    for p in (cards, quiz):
        p.add_argument("--llm", action="store_true",
                       help="also free-form questions by the LLM of LLM_PROVIDER (kept when their quote holds the answer)")
    for p in (cards, quiz, coverage, export):
        p.add_argument("--notes", type=Path, metavar="DIR", help="the notes folder (default NOTES_DIR)")
        if p is not cards:
            p.add_argument("--db", type=Path, metavar="FILE", help="where cards and reviews are kept (default APP_DB)")
        p.add_argument("--source", metavar="FILE", help="only this note (path under the notes folder)")
        p.add_argument("--under", metavar="ANCHOR", help="only this section and its subsections")
        p.add_argument("--tag", action="append", default=[], metavar="TAG", help="only notes with this tag")
    return parser


def run_quiz(deck, scope, *, limit: int, read=input, write=print, chat=None) -> int:
    """Ask due cards, then new ones: type the answer, see the grade and the passage, rate 1-4."""
    from study.deck import study_queue, wait_text
    from study.freeform import grade_card
    from study.store import CardGone

    queue = study_queue(deck.store, scope)
    write(f"{queue.due} due, {queue.new} new in {scope.describe()} ({queue.later} later). "
          "Type the answer (Enter to show it), then rate: 1 again, 2 hard, 3 good, 4 easy; q quits.")
    asked = 0
    for item in queue.cards[:limit]:
        card = item.card
        write(f"\n{card.heading}\n  {card.prompt}")
        typed = read("answer> ")
        if typed.strip().lower() == "q":
            break
        grade = grade_card(card, typed, chat=chat)
        write(f"  {grade.message}\n  from {card.source}#{card.anchor}: {' '.join(card.quote.split())}")
        while True:
            key = read(f"rate [1-4, Enter = {grade.suggested}]> ").strip().lower()
            if key == "q":
                return asked
            rating = RATING_KEYS.get(key, "?") if key else grade.suggested
            if rating in ("again", "hard", "good", "easy"):
                break
            write("  Type 1, 2, 3 or 4 (or Enter for the suggested rating).")
        try:
            result = deck.store.review(card.id, rating, verdict=grade.verdict, typed=grade.typed)
        except CardGone as exc:
            write(f"  {exc}")
            continue
        asked += 1
        write(f"  next in {wait_text(result.interval_s)}")
    write(f"\n{asked} reviewed.")
    return asked


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from qa.settings import load_settings
    from study.cards import make_cards
    from study.deck import Scope

    scope = Scope(args.source, args.under, tuple(args.tag))
    try:
        settings = load_settings(notes_dir=args.notes, app_db=getattr(args, "db", None))
        chat = None
        if getattr(args, "llm", False):
            from qa.llm import make_chat_model

            chat = make_chat_model(settings)
            if chat is None:
                raise NotesQAError("--llm needs a language model: set LLM_PROVIDER (ollama or openai) and LLM_MODEL.")
        if args.command == "cards":
            from ingest.index import load_corpus
            from study.deck import open_deck

            if chat is not None:
                deck = open_deck(settings, chat=chat)
                every = deck.cards
                for problem in deck.problems:
                    print(f"warning: {problem}", file=sys.stderr)
            else:
                every = make_cards(load_corpus(Path(settings.notes_dir), max_bytes=settings.max_file_bytes).notes)
            for card in every:
                if scope.covers(card):
                    data = card.to_dict()
                    print(json.dumps(data, ensure_ascii=False) if args.json else
                          f"{card.source}#{card.anchor}  {card.prompt}  →  {card.answer}")
            return 0
        from study.deck import open_deck

        deck = open_deck(settings, chat=chat)
        for problem in deck.problems:
            print(f"warning: {problem}", file=sys.stderr)
        if args.command == "quiz":
            if args.limit < 1:
                raise NotesQAError("--limit must be at least 1.")
            run_quiz(deck, scope, limit=args.limit, chat=chat)
        elif args.command == "coverage":
            from study.coverage import section_coverage

            for row in section_coverage(deck.corpus, deck.store):
                if scope.source and row.source != scope.source:
                    continue
                recall = "never studied" if row.retrievability is None else f"recall {row.retrievability:.0%}"
                print(json.dumps(row.to_dict(), ensure_ascii=False) if args.json else
                      f"{row.source}#{row.anchor}  {row.heading}: {row.cards} cards, {row.reviews} reviews, "
                      f"{recall}, asked {row.asked}, cited {row.cited}")
        else:
            from study.export import write_apkg, write_csv

            if not (args.apkg or args.csv):
                raise NotesQAError("Say where to write: --apkg FILE (Anki) and/or --csv FILE.")
            cards = [c for c in deck.cards if scope.covers(c)]
            url = args.app_url or settings.app_url
            for path, write in ((args.apkg, write_apkg), (args.csv, write_csv)):
                if path:
                    try:
                        count = write(cards, path, app_url=url)
                    except OSError as exc:
                        raise NotesQAError(f"Cannot write {path} ({exc.strerror or exc}): choose a folder you can "
                                           "write.") from exc
                    print(f"{count} cards written to {path}", file=sys.stderr)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, EOFError):
        return 130
    return 0


if __name__ == "__main__":
    from qa.pipes import run_quietly_in_pipes

    sys.exit(run_quietly_in_pipes(main))
