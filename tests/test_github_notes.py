"""Notes from GitHub as their author sees them, and a new user's first steps (issue 21), in AppTest.

The fixture (tests/fixtures/github/kubernetes-notes.md) is a README-style study note: a title centred in
`<div align="center">`, a `<details>` table of contents of HTML links, headings with inline code,
`--flags` in commands and prose. The browser side is in test_browser.py.
"""

from __future__ import annotations

import json
import re
import time

from streamlit.testing.v1 import AppTest

from conftest import FIXTURES, run_cli
from test_app import ask, start_app

NOTE = "kubernetes-notes.md"


def page_html(at: AppTest) -> str:
    """Everything the page's Markdown elements hold (the note's bodies are HTML inside them)."""
    return "\n".join(m.value for m in at.markdown)


# ---- 1-3: the Notes page -------------------------------------------------------------------------

def test_a_github_readme_reads_on_the_notes_page_as_on_github(monkeypatch, github_settings):
    at = start_app(monkeypatch, github_settings.notes_dir, github_settings.chroma_dir)
    at.switch_page("ui/pages/notes.py")
    at.query_params["note"] = NOTE
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    shown = page_html(at)
    # 1. HTML is rendered, never shown as text; the <details> table of contents is left out (the page draws its own)
    assert not re.search(r"&lt;/?(div|details|summary|ol|li|img|kbd)\b", shown)
    assert "Table of Contents" not in shown and 'href="#pods"' not in shown
    assert "<em>[image: Kubernetes logo]</em>" in shown and "<kbd>Ctrl</kbd>+<kbd>C</kbd>" in shown
    assert "<details>&#10;<summary>Why did my rollout hang?</summary>" in shown  # a fold of content stays one
    # 2. inline code in headings is code (no escaped backticks) in the headings and in the Contents
    headings = {h.proto.anchor: h.value for h in [*at.title, *at.header, *at.subheader]}
    assert headings["kubectl-basics"] == "`kubectl` basics"
    assert headings["-valuesreplicacount-"] == "`{{ .Values.replicaCount }}`"
    contents = next(e for e in at.expander if e.label == "Contents")
    toc = "\n".join(m.value for m in contents.markdown)
    assert "[`{{ .Values.replicaCount }}`](#-valuesreplicacount-)" in toc and "\\`" not in toc
    # 3. command-line flags as written (shown as one raw HTML block: no typographic replacement)
    assert "add --dry-run=client -o yaml to kubectl create" in shown
    assert "everything after -- is passed to the container" in shown and "—" not in shown
    assert all(m.value.startswith("<div>") and "\n" not in m.value
               for m in at.markdown if "<p>" in m.value)


def test_an_html_table_of_contents_is_navigation_never_an_answer():
    from ingest.chunk import chunk_sections
    from notes.parse import parse_note
    from notes.units import extract_units

    text = (FIXTURES / "github" / NOTE).read_text(encoding="utf-8")
    note = parse_note(text, NOTE)
    [toc] = [s for s in note.sections if s.is_navigation]
    assert toc.text.startswith("<details>") and toc.text.endswith("</details>") and "#rolling-updates" in toc.text
    assert not any("<details>\n<summary><b>Table" in s.text for s in note.content_sections)
    units = [u.text for s in note.content_sections for u in extract_units(s.text)]
    chunks = [c.text for c in chunk_sections(note.sections)]
    assert not any("Table of Contents" in t or "Rolling updates Values" in t for t in units + chunks)
    # a fold that holds content is not navigation
    assert any("readiness probe" in u for u in units)


def test_unsafe_html_in_a_note_is_dropped_and_the_words_stay():
    from ui.notes import display_html

    shown, _ = display_html('<div align="center" onmouseover="x()">\n\n**Title** <svg onload="x()"></svg>\n\n'
                            '<a href="javascript:alert(1)">click</a> <img src="data:image/png;base64,AA" alt="dot">'
                            ' <iframe src="https://example.com"></iframe>\n\n</div>', NOTE)
    assert '<div align="center">' in shown and "<strong>Title</strong>" in shown
    for bad in ("onmouseover", "onload", "svg", "javascript:", "data:", "iframe"):
        assert bad not in shown, bad
    assert ">click</a>" in shown and "[image: dot]" in shown


# ---- 4: the index belongs to one notes folder ----------------------------------------------------

def test_changing_notes_dir_never_answers_from_the_other_folders_index(monkeypatch, fresh_index, github_notes,
                                                                        model):
    from ingest.index import sync_index

    sync_index(fresh_index, model, progress=False)  # the index holds the seed notes
    at = start_app(monkeypatch, fresh_index.notes_dir, fresh_index.chroma_dir)
    assert not at.exception and not at.warning and not at.chat_input[0].proto.disabled

    monkeypatch.setenv("NOTES_DIR", str(github_notes))  # the user points the app at another folder
    at.run()
    assert not at.exception
    [line] = [re.sub(r"\\(.)", r"\1", w.value) for w in at.main.warning]  # as the reader sees it
    assert str(fresh_index.notes_dir) in line and str(github_notes) in line and "re-index" in line
    assert any(str(fresh_index.notes_dir) in w.value for w in at.sidebar.warning)
    assert at.chat_input[0].proto.disabled  # never answered from the other notes

    at.button(key="folder_reindex").click().run()
    assert not at.exception and not at.main.warning, [w.value for w in at.main.warning]
    assert [m.value for m in at.sidebar.get("metric")][:1] == ["1"]
    assert not at.chat_input[0].proto.disabled
    reply = ask(at, "How do I print a manifest without creating anything?")
    assert {c["source"] for c in reply["answer"]["citations"]} == {NOTE}, reply


# ---- 5: example questions from the user's own headings -------------------------------------------

def test_example_questions_come_from_the_users_own_headings(monkeypatch, github_settings):
    at = start_app(monkeypatch, github_settings.notes_dir, github_settings.chroma_dir)
    assert not at.exception
    examples = [b.label for b in at.button if b.key and b.key.startswith("example-")]
    assert examples == ["Tell me about Pods", "Tell me about Values", "Tell me about Rolling updates"]
    assert not any("Lambda" in c.value for c in at.caption)

    at.button(key="example-0").click().run()
    assert not at.exception
    assert at.session_state["messages"][0]["content"] == "Tell me about Pods"


def test_example_questions_skip_code_long_and_title_headings():
    from notes.parse import parse_note
    from ui.examples import example_questions

    note = parse_note("# Notes\n\n## `kubectl` basics\n\nx\n\n## Why use Helm?\n\ny\n\n## Use Cases:\n\nz\n\n"
                      "## A heading far too long to be asked about in a question\n\nw\n", "n.md")
    assert example_questions([note], count=5) == ["Why use Helm?", "Tell me about Use Cases"]


# ---- 7: a rated question is a follow-up only when it was searched as one --------------------------

def test_history_used_is_the_turn_a_follow_up_was_searched_with():
    from ui.answers import history_used

    earlier = [{"role": "user", "content": "Tell me about DynamoDB Streams"},
               {"role": "assistant", "content": "They keep data for 24 hours [1]."},
               {"role": "user", "content": "What does DAX cache?"},
               {"role": "assistant", "content": "", "error": "The index is not available."}]
    follow_up = {"question": "How long does it keep the data?",
                 "searched_query": "Tell me about DynamoDB Streams How long does it keep the data?"}
    assert history_used(earlier, follow_up) == [{"role": "user", "content": "Tell me about DynamoDB Streams"},
                                                {"role": "assistant", "content": "They keep data for 24 hours."}]
    assert history_used(earlier, {"question": "What is SQS?", "searched_query": "What is SQS?"}) == []


def test_feedback_export_marks_only_real_follow_ups_with_the_turns_used(monkeypatch, seed_settings, tmp_path):
    db = tmp_path / "app.sqlite3"
    monkeypatch.setenv("APP_DB", str(db))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    for question in ("What does DAX cache?", "Tell me about DynamoDB Streams", "How long does it keep the data?",
                     "How long can a Lambda function run?"):
        ask(at, question)
    for n in range(4):
        at.feedback[n].set_value(1).run()  # 👍 on every answer
    assert not at.exception

    out = tmp_path / "export.jsonl"
    done = run_cli("-m", "eval.feedback", "--export", str(out), "--db", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    items = {i["question"]: i for i in map(json.loads, out.read_text().splitlines())}
    follow_up = items["How long does it keep the data?"]
    assert follow_up["type"] == "follow-up"
    assert [t["content"] for t in follow_up["history"]][:1] == ["Tell me about DynamoDB Streams"]
    assert len(follow_up["history"]) == 2  # that question and its answer, not the whole conversation
    for standalone in ("What does DAX cache?", "Tell me about DynamoDB Streams", "How long can a Lambda function run?"):
        assert items[standalone]["type"] == "fact" and "history" not in items[standalone], standalone


# ---- 8: first start ------------------------------------------------------------------------------

def test_first_start_shows_the_chat_box_at_once_and_builds_the_index_in_the_background(monkeypatch, github_notes,
                                                                                       tmp_path):
    from ui import state

    started = time.monotonic()
    at = start_app(monkeypatch, github_notes, tmp_path / ".chroma")
    first_run = time.monotonic() - started
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = at.session_state[state.BUILD_KEY]
    assert not at.chat_input[0].proto.disabled and not job.done.is_set()  # usable while the index is built
    assert at.get("progress") and any("First start" in c.value for c in at.caption)
    assert first_run < 10, f"the first page took {first_run:.1f} s"

    at.chat_input[0].set_value("How do I print a manifest without creating anything?").run()  # asked meanwhile
    assert not at.exception and job.done.is_set()
    reply = at.session_state["messages"][-1]
    assert not reply.get("error"), reply.get("error")
    assert "--dry-run=client" in reply["answer"]["answer"]
    assert [m.value for m in at.sidebar.get("metric")][:1] == ["1"]


def test_a_first_start_on_a_missing_folder_is_one_sentence(monkeypatch, tmp_path):
    at = start_app(monkeypatch, tmp_path / "no-such-folder", tmp_path / ".chroma")
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)
    assert at.chat_input[0].proto.disabled

