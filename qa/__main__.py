"""`python -m qa ask "QUESTION" [--json] [--k N] [--source FILE] [--history FILE]`, `python -m qa batch [--json]`
and `python -m qa chat` (an interactive conversation, qa/chat.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa.errors import BadQuestion, NotesQAError
from qa.conversation import clean_history, clean_question

EXIT_BAD_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Answer questions from your notes.")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--history", type=Path, metavar="FILE",
                     help="the earlier turns, as JSON: a list of {role, content} (or one per line), oldest first")
    batch = sub.add_parser("batch", help="answer JSON lines {id, question, history?} from stdin")
    chat = sub.add_parser("chat", help="a conversation in the terminal (/sources, /clear, /quit)")
    for p in (ask, batch, chat):
        if p is not chat:
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


def read_history(path: Path) -> list[dict]:
    """Earlier turns from a file: a JSON list of {role, content}, or one such object per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadQuestion(f"Cannot read the history file {path} ({exc}).") from exc
    try:
        turns = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise BadQuestion(f"The history file {path} is not JSON ({exc}): write a list of "
                          '{"role": "user" | "assistant", "content": "…"}.') from exc
    try:
        return clean_history(turns)
    except BadQuestion:
        raise BadQuestion(f'Each turn in {path} must be {{"role": "user" | "assistant", "content": "…"}}.') from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        history = None
        if args.command == "ask":
            clean_question(args.question)  # before loading the model: bad input fails fast
            history = read_history(args.history) if args.history else None
        if args.k < 1:
            raise BadQuestion("--k must be at least 1.")
        from qa.service import NotesQA

        qa = NotesQA.load()
        options = {"k": args.k, "source": args.source, "under": args.under, "tags": tuple(args.tag),
                   "mode": args.mode}
        if args.command == "batch":
            from qa.batch import run_batch

            return run_batch(qa, options, retry_s=qa.settings.chroma_retry_s)
        if args.command == "chat":
            from qa.chat import run_chat

            return run_chat(qa, cache_dir=qa.settings.model_cache_dir, **options)
        answer = qa.answer(args.question, history=history, **options)
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
    from qa.pipes import run_quietly_in_pipes

    sys.exit(run_quietly_in_pipes(main))
