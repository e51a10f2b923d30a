"""Downloads: a conversation as a Markdown document, each answer followed by its numbered sources; study
cards as an Anki package or CSV, each linking back to its section in the app."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from ui.answers import breadcrumb, not_in
from ui.markdown import escape_html


def _quote_lines(text: str) -> list[str]:
    return [f"   > {escape_html(line)}".rstrip() for line in text.strip().splitlines() if line.strip()]


def conversation_markdown(messages: list[dict], *, title: str = "Notes Q&A conversation",
                          exported_at: datetime | None = None) -> str:
    """The chat so far, questions as headings, answers with `[n]` markers and a source list.

    Citations point at `note#anchor` (the path under the notes folder), with the quoted passage. HTML from
    the notes or a question is escaped: the file may be opened by any Markdown renderer.
    """
    when = (exported_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    lines = [f"# {title}", "", f"_Exported {when}_", ""]
    for m in messages:
        if m["role"] == "user":
            lines += [f"## {escape_html(' '.join(m['content'].split()))}", ""]
            continue
        if m.get("error"):
            lines += [f"_Error: {escape_html(m['error'])}_", ""]
            continue
        answer = m["answer"]
        if answer["abstained"]:
            lines += [f"**{not_in(m)}.** {escape_html(answer['answer'])}", ""]
            closest = answer.get("retrieved", [])[:3]
            if closest:
                lines += ["Closest sections in your notes:", ""]
                lines += [f"- {escape_html(breadcrumb(s['heading_path']))} ({s['source']}#{s['anchor']})"
                          for s in closest]
                lines.append("")
            continue
        lines += [escape_html(answer["answer"]), ""]
        if answer.get("citations"):
            lines += ["Sources:", ""]
            for c in answer["citations"]:
                lines.append(f"{c['n']}. {escape_html(breadcrumb(c['heading_path']))} ({c['url']})")
                lines += _quote_lines(c["quote"])
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def export_deck(cards: list, kind: str, *, app_url: str) -> bytes:
    """Study cards (study.cards.Card) as the bytes of an Anki package (`kind` "apkg") or a CSV file ("csv"),
    their links back to the app at `app_url` (APP_URL)."""
    from study.export import write_apkg, write_csv

    write = {"apkg": write_apkg, "csv": write_csv}[kind]
    with tempfile.TemporaryDirectory(prefix="notesqa-export-") as folder:
        path = Path(folder) / f"cards.{kind}"
        write(cards, path, app_url=app_url)
        return path.read_bytes()
