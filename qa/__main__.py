"""`python -m qa ask "QUESTION" [--json] [--k N] [--source FILE]` and `python -m qa batch [--json]`."""

from __future__ import annotations

import argparse
import json
import sys

from qa.errors import BadQuestion, NotesQAError
from qa.conversation import clean_question

EXIT_BAD_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Answer questions from your notes.")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    batch = sub.add_parser("batch", help="answer JSON lines {id, question, history?} from stdin")
    for p in (ask, batch):
        p.add_argument("--json", action="store_true", help="print JSON (batch always prints JSON lines)")
        p.add_argument("--k", type=int, default=5, help="sections to retrieve (default 5)")
        p.add_argument("--source", metavar="FILE", help="only search this note (path under the notes folder)")
        p.add_argument("--under", metavar="ANCHOR", help="only search this section and its subsections")
        p.add_argument("--tag", action="append", default=[], metavar="TAG",
                       help="only search notes with this front-matter tag (repeat for any of several)")
        p.add_argument("--mode", choices=("extractive", "llm"),
                       help="answer mode (default: llm when LLM_PROVIDER is set, else extractive)")
    return parser


def format_text(answer) -> str:
    """The answer, then its numbered sources (or the closest sections when it abstained)."""
    lines = [answer.text]
    if answer.notice:
        lines.insert(0, f"({answer.notice})")
    if answer.citations:
        lines.append("")
        lines += [f"[{c.n}] {c.url} — {' › '.join(c.heading_path)}" for c in answer.citations]
    elif answer.retrieval and answer.retrieval.sections:
        lines += ["", "Closest sections in your notes:"]
        lines += [f"  {s.url} — {s.breadcrumb}" for s in answer.retrieval.sections[:3]]
    return "\n".join(lines)


def run_batch(qa, args) -> int:
    """One JSON line out per JSON line in, same order and id; a bad line gets an `error` field."""
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or "question" not in item:
                raise ValueError("expected an object with a 'question'")
        except ValueError as exc:
            print(json.dumps({"id": None, "error": f"line {number}: {exc}"}), flush=True)
            continue
        try:
            answer = qa.answer(item.get("question") or "", history=item.get("history"), k=args.k,
                               source=args.source, under=args.under, tags=tuple(args.tag), mode=args.mode)
            out = {"id": item.get("id"), **answer.to_dict()}
        except BadQuestion as exc:
            out = {"id": item.get("id"), "question": item.get("question"), "error": str(exc)}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "ask":
            clean_question(args.question)  # before loading the model: bad input fails fast
        if args.k < 1:
            raise BadQuestion("--k must be at least 1.")
        from qa.service import NotesQA

        qa = NotesQA.load()
        if args.command == "batch":
            return run_batch(qa, args)
        answer = qa.answer(args.question, k=args.k, source=args.source, under=args.under, tags=tuple(args.tag),
                           mode=args.mode)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_text(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
