"""`python -m qa chat`: a conversation with your notes in the terminal, in the spirit of `llm chat`.

The model and the index are loaded once; every question is answered with the conversation so far
(follow-ups work as in the app); `/sources` shows the last answer's quotes, `/clear` starts over,
`/quit` (or Ctrl-D) leaves. Line editing and history come from readline when the terminal has it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from qa.errors import BadQuestion, NotesQAError
from qa.text import plural

COMMANDS = "/sources  the last answer's quotes · /clear  start over · /quit  leave"
HISTORY_FILE = "chat-history"
_MARKER = re.compile(r"\s*\[\d+\]")


def _readline(cache_dir: Path | None) -> Callable[[], None]:
    """Line editing and a history file, when readline is there; returns what saves the history."""
    try:
        import readline
    except ImportError:
        return lambda: None
    if cache_dir is None:
        return lambda: None
    path = Path(cache_dir) / HISTORY_FILE
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:
            pass
    return save


def format_sources(answer) -> str:
    """Each citation of an answer with its note address, heading path and the quoted passage."""
    if answer is None:
        return "(no answer yet)"
    if not answer.citations:
        return "(the last answer cites nothing: the notes did not cover it)"
    lines = []
    for c in answer.citations:
        quote = " ".join(c.quote.split())
        lines.append(f"[{c.n}] {c.url} — {' › '.join(c.heading_path)}\n    “{quote}”")
    return "\n".join(lines)


def run_chat(qa, *, ask: Callable[..., object] | None = None, read: Callable[[str], str] = input,
             write: Callable[[str], None] = print, cache_dir: Path | None = None, **options) -> int:
    """The read-answer loop; `options` go to `qa.answer` (k, source, under, tags, mode)."""
    ask = ask or qa.answer
    save_history = _readline(cache_dir)
    history: list[dict] = []
    last = None
    state = qa.index_state()
    write(f"Chatting with your notes ({plural(state.files, 'note')}, {plural(state.sections, 'section')}). "
          f"{COMMANDS}")
    try:
        while True:
            try:
                line = read("> ").strip()
            except EOFError:
                write("")
                return 0
            except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as a shell does
                write("")
                continue
            if not line:
                continue
            if line in ("/quit", "/exit", "/q"):
                return 0
            if line == "/clear":
                history, last = [], None
                write("(conversation cleared)")
                continue
            if line == "/sources":
                write(format_sources(last))
                continue
            if line.startswith("/"):
                write(f"Unknown command {line.split()[0]}. {COMMANDS}")
                continue
            try:
                answer = ask(line, history=list(history), **options)
            except BadQuestion as exc:
                write(str(exc))
                continue
            except NotesQAError as exc:
                write(f"error: {exc}")
                continue
            last = answer
            from qa.__main__ import format_text

            write(format_text(answer))
            history += [{"role": "user", "content": line},
                        {"role": "assistant", "content": " ".join(_MARKER.sub("", answer.text).split())}]
    finally:
        save_history()
