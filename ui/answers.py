"""Chat messages: what the chat page stores per turn and how an answer is shown again.

An assistant message keeps the whole `Answer.to_dict()` so every rerun re-renders the same answer,
its citations, its "what was searched" and its timing without asking again. Answers and quotes are shown
as safe HTML (`ui.html.render_html`) so that a command's `--` or `->` reaches the screen as written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from ui.html import HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, render_html
from ui.links import link_params, note_url
from ui.markdown import blockquote, escape_markdown, inline_markdown

NOT_IN_NOTES = "Not in your notes"
CLOSEST_SHOWN = 3
_MARKER = re.compile(r"\[(\d+)\]")
BREADCRUMB = " › "


def user_message(question: str) -> dict:
    return {"role": "user", "content": question}


def assistant_message(answer, server_ms: float, *, scope: str | None = None) -> dict:
    """The stored form of one answer (`answer` is a `qa.answer.Answer`)."""
    data = answer.to_dict()
    return {"role": "assistant", "content": data["answer"], "answer": data, "server_ms": round(server_ms, 1),
            "scope": scope}


def error_message(text: str) -> dict:
    return {"role": "assistant", "content": "", "error": text}


def history_for_ask(messages: list[dict]) -> list[dict]:
    """Earlier turns as chat messages for `NotesQA.ask(history=...)`, failed turns left out."""
    history = []
    for m in messages:
        if m.get("error") or not m.get("content"):
            continue
        content = re.sub(r"\s*\[\d+\]", "", m["content"]) if m["role"] == "assistant" else m["content"]
        history.append({"role": m["role"], "content": " ".join(content.split())})
    return history


def history_used(earlier: list[dict], answer: dict) -> list[dict]:
    """The earlier turns a question was answered with, as chat messages: none when it was searched on its
    own; for a follow-up, the user's question whose subject was searched along with it, and its answer
    (`qa.conversation.condense_query` uses that one question, never the rest of the conversation)."""
    from qa.conversation import MAX_QUESTION_CHARS

    asked = " ".join(answer["question"].split())
    searched = " ".join((answer.get("searched_query") or asked).split())
    if searched == asked or not searched.endswith(" " + asked):
        return []
    subject = searched[:-len(asked)].strip()
    history = history_for_ask(earlier)
    for n in range(len(history) - 1, -1, -1):
        turn = history[n]
        if turn["role"] == "user" and " ".join(turn["content"][:MAX_QUESTION_CHARS].split()) == subject:
            reply = history[n + 1:n + 2]
            return [turn, *(r for r in reply if r["role"] == "assistant")]
    return []


def breadcrumb(path) -> str:
    return BREADCRUMB.join(path)


def _citations(answer: dict) -> dict[int, dict]:
    return {c["n"]: c for c in answer.get("citations", [])}


def _marker_link(citation: dict) -> str:
    url = note_url(citation["source"], citation["anchor"], citation["quote"])
    title = f'{breadcrumb(citation["heading_path"])} ({citation["source"]})'.replace("\\", "/").replace('"', "'")
    return f'[\\[{citation["n"]}\\]]({url} "{title}")'


def answer_tokens(message: dict) -> list[str]:
    """The answer as Markdown, in pieces to stream: words, and each `[n]` marker as a whole link."""
    answer = message["answer"]
    if answer["abstained"]:
        words = escape_markdown(answer["answer"]).split(" ")
        return [f"**{not_in(message)}.** "] + [w + " " for w in words[:-1]] + words[-1:]
    citations = _citations(answer)
    tokens: list[str] = []
    for n, part in enumerate(_MARKER.split(answer["answer"])):
        if n % 2:  # a marker's number
            citation = citations.get(int(part))
            tokens.append(_marker_link(citation) if citation else escape_markdown(f"[{part}]"))
        else:
            tokens += re.findall(r"`[^`]+`\s*|\S+\s*|\s+", inline_markdown(part))
    return tokens


def not_in(message: dict) -> str:
    """'Not in your notes', or, when the search was limited, 'Not in the selected section' / '…note' / '…notes'."""
    scope = message.get("scope")
    if not scope:
        return NOT_IN_NOTES
    if scope.startswith("notes tagged"):
        return "Not in the notes with those tags"
    return "Not in the selected section" if " › " in scope else "Not in the selected note"


def answer_markdown(message: dict) -> str:
    return "".join(answer_tokens(message)).strip()


def answer_html(message: dict) -> str:
    """The answer as safe HTML for `st.markdown(..., unsafe_allow_html=True)`."""
    return render_html(answer_markdown(message))


def stream_html(message: dict, delay_s: float = 0.0) -> Iterator[str]:
    """The answer growing token by token (`answer_tokens`), each step as `answer_html` would show it,
    optionally paced: the page redraws one placeholder with each."""
    tokens = answer_tokens(message)
    for n in range(1, len(tokens) + 1):
        yield render_html("".join(tokens[:n]).strip())
        if delay_s:
            time.sleep(delay_s)


def source_items(message: dict) -> list[dict]:
    """One entry per citation: label, quoted passage (Markdown), and where it links."""
    items = []
    for c in message["answer"].get("citations", []):
        items.append({
            "n": c["n"], "label": breadcrumb(c["heading_path"]), "source": c["source"], "anchor": c["anchor"],
            "quote_html": quote_html(c["quote"]),
            "url": note_url(c["source"], c["anchor"], c["quote"]),
            "params": link_params(c["source"], c["anchor"], c["quote"]),
        })
    return items


def quote_html(quote: str, *, mark: str | None = None) -> str:
    """A cited passage as the chat's sources show it: readable text in a quote, as safe HTML; `mark` (a few
    words of it, such as a study card's answer) highlighted where it first occurs."""
    text = _plain(quote)
    at = text.find(mark) if mark else -1
    if at >= 0:
        text = f"{text[:at]}{HIGHLIGHT_OPEN}{mark}{HIGHLIGHT_CLOSE}{text[at + len(mark):]}"
    return render_html(blockquote(inline_markdown(text)))


def _plain(quote: str) -> str:
    """A quote as readable text: Markdown/HTML markup of the note dropped, words kept."""
    from notes.blocks import plain_text

    return plain_text(quote) or quote


def closest_sections(message: dict, n: int = CLOSEST_SHOWN) -> list[dict]:
    """The sections retrieval found nearest (offered when the answer abstained)."""
    out = []
    for s in message["answer"].get("retrieved", [])[:n]:
        out.append({"label": breadcrumb(s["heading_path"]), "source": s["source"], "anchor": s["anchor"],
                    "url": note_url(s["source"], s["anchor"]), "params": link_params(s["source"], s["anchor"])})
    return out


def searched_rows(message: dict) -> list[dict]:
    """One row per retrieved section: rank, section, note, and the dense / keyword / fused scores."""
    return [{"rank": s["rank"], "section": breadcrumb(s["heading_path"]), "note": f'{s["source"]}#{s["anchor"]}',
             "dense": s["dense_score"], "keyword": s["keyword_score"], "fused": s["score"]}
            for s in message["answer"].get("retrieved", [])]


def timing_caption(message: dict) -> str:
    """'Answered in 84 ms on the server (retrieve 31 ms · compose 52 ms)'."""
    t = message["answer"].get("timings_ms", {})
    parts = [f"{label} {t[key]:.0f} ms" for key, label in (("retrieve", "retrieve"), ("answer", "compose"))
             if key in t]
    detail = f" ({' · '.join(parts)})" if parts else ""
    return f"Answered in {message.get('server_ms', t.get('total', 0)):.0f} ms on the server{detail}"


def decision_text(message: dict) -> str:
    d = message["answer"].get("decision") or {}
    if not d:
        return ""
    decided = "answered" if d["reason"] == "supported" else f"not answered: {d['reason']}"
    return f"Decision: {decided} (best similarity {d['similarity']:.2f})"
