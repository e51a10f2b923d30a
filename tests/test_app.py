"""The Streamlit app run in-process with AppTest (the real app.py, pages and index), plus its UI helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO

APP = REPO / "app.py"
TIMEOUT = 120


def start_app(monkeypatch, notes_dir: Path, chroma_dir: Path) -> AppTest:
    """The app pointed at this notes folder and index (the cached service is keyed on both)."""
    monkeypatch.setenv("NOTES_DIR", str(notes_dir))
    monkeypatch.setenv("CHROMA_DIR", str(chroma_dir))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()


def finish_first_build(at: AppTest) -> AppTest:
    """Wait for the index a first start builds in the background (ui/state.py), then run the page again."""
    from ui import state

    try:
        job = at.session_state[state.BUILD_KEY]
    except KeyError:
        return at
    assert job.done.wait(300), "the first build did not finish"
    return at.run()


@pytest.fixture
def app(monkeypatch, seed_settings) -> AppTest:
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def ask(at: AppTest, question: str) -> dict:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at.session_state["messages"][-1]


def texts(block) -> str:
    return "\n".join(m.value for m in block.markdown)


def test_question_gets_answer_with_citations(app):
    reply = ask(app, "How long can a Lambda function run?")

    assert reply["role"] == "assistant" and not reply.get("error")
    assert "900 seconds" in reply["content"]
    assert "aws-notes.md#15" in [c["url"] for c in reply["answer"]["citations"]]
    user, assistant = app.chat_message[0], app.chat_message[1]
    assert "How long can a Lambda function run" in texts(user)
    shown = texts(assistant)
    assert "900 seconds" in shown
    assert 'href="notes?note=aws-notes.md&amp;anchor=15&amp;quote=' in shown  # the [1] marker links to the Notes page
    expanders = [e.label for e in assistant.expander]
    assert any(label.startswith("Sources") for label in expanders) and "What was searched" in expanders
    searched = next(e for e in assistant.expander if e.label == "What was searched")
    assert "How long can a Lambda function run?" in texts(searched)
    assert searched.dataframe, "the per-hit scores table"
    assert any("Answered in" in c.value for c in searched.caption)
    assert assistant.get("page_link"), "each source also opens the Notes page in this tab"


def test_warm_question_is_fast(app):
    ask(app, "How long can a Lambda function run?")
    warm = min(ask(app, "How long can a Lambda function run?")["server_ms"] for _ in range(3))
    assert warm < 500, f"a warm question took {warm} ms on the server"


def test_unanswerable_question_abstains_with_closest_sections(app):
    reply = ask(app, "What is the maximum message size in SQS?")

    assert reply["answer"]["abstained"] and not reply["answer"]["citations"]
    shown = texts(app.chat_message[1])
    assert "Not in your notes" in shown
    assert "Closest sections in your notes" in shown and "notes?note=aws-notes.md" in shown


def test_follow_up_uses_the_history(app):
    ask(app, "Tell me about DynamoDB Streams")
    reply = ask(app, "How long does it keep the data?")

    assert "24-hour" in reply["content"]
    assert "DynamoDB Streams" in reply["answer"]["searched_query"]
    assert len(app.chat_message) == 4


@pytest.mark.parametrize("empty", ["", "   \n "])
def test_empty_input_does_nothing(app, empty):
    app.chat_input[0].set_value(empty).run()

    assert not app.exception and not app.error
    assert app.session_state["messages"] == []
    assert not app.chat_message


def test_html_in_a_question_is_shown_as_text(app):
    ask(app, "<script>alert(1)</script> Lambda limits?")

    assert "\\<script\\>" in texts(app.chat_message[0])


def test_clear_chat_and_download(app):
    ask(app, "How long can a Lambda function run?")
    download = app.get("download_button")[0]
    assert not download.proto.disabled
    clear = next(b for b in app.button if b.label == "New chat")
    clear.click().run()

    assert app.session_state["messages"] == [] and not app.chat_message


def test_sessions_do_not_share_history(app, monkeypatch, seed_settings):
    ask(app, "How long can a Lambda function run?")
    other = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)

    assert other.session_state["messages"] == [] and not other.chat_message


def test_notes_page_deep_link_opens_the_section(app):
    app.switch_page("ui/pages/notes.py")
    app.query_params.update(note="aws-notes.md", anchor="15",
                            quote="Maximum execution time: 900 seconds (15 minutes).")
    app.run()

    assert not app.exception and not app.error
    headings = {h.proto.anchor: h.value for h in [*app.title, *app.header, *app.subheader]}
    assert headings.get("15") == "Lambda Limits"
    assert {"1", "11", "26", "31"} <= headings.keys()  # every section has its anchor as id
    assert any("Opened at" in c.value and "Lambda Limits" in c.value for c in app.caption)
    assert any(">Maximum execution time: 900 seconds (15 minutes).</mark>" in m.value for m in app.markdown)
    assert app.selectbox(key="note_picker").value == "aws-notes.md"


def test_notes_page_unknown_anchor_warns(app):
    app.switch_page("ui/pages/notes.py")
    app.query_params.update(note="aws-notes.md", anchor="no-such-section")
    app.run()

    assert not app.exception
    assert any("no section" in w.value for w in app.warning)


def test_missing_notes_folder_shows_an_error(monkeypatch, tmp_path):
    at = start_app(monkeypatch, tmp_path / "no-such-folder", tmp_path / ".chroma")

    assert not at.exception
    assert any("does not exist" in e.value for e in at.error), [e.value for e in at.error]
    assert at.chat_input[0].proto.disabled


def test_unreachable_chroma_server_shows_an_error(monkeypatch, tmp_path):
    from conftest import free_port

    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(free_port()))
    monkeypatch.setenv("CHROMA_TIMEOUT_S", "1")
    at = start_app(monkeypatch, tmp_path, tmp_path / ".chroma")

    assert not at.exception
    assert any("Cannot reach the Chroma server" in e.value for e in at.error)
    assert at.chat_input[0].proto.disabled


@pytest.mark.parametrize("env, message", [
    ({"EMBED_MODEL": "no-such-model"}, "Cannot load the embedding model"),
    ({"CHROMA_PORT": "not-a-port"}, "The settings are invalid"),
])
def test_bad_settings_show_an_error(monkeypatch, seed_settings, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)

    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_first_run_builds_the_index_then_reindex_picks_up_a_new_note(monkeypatch, fresh_index):
    at = finish_first_build(start_app(monkeypatch, fresh_index.notes_dir, fresh_index.chroma_dir))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m.value for m in at.sidebar.get("metric")][:1] == ["1"]

    (fresh_index.notes_dir / "kafka.md").write_text(
        "# Kafka\n\n## Retention\n\nKafka keeps messages for 7 days by default (log.retention.hours = 168).\n")
    next(b for b in at.sidebar.button if b.label == "Re-index notes").click().run()

    assert not at.exception
    assert any("Re-indexed" in s.value for s in at.sidebar.success)
    assert [m.value for m in at.sidebar.get("metric")][:1] == ["2"]
    reply = ask(at, "How many days does Kafka keep messages by default?")
    assert "kafka.md" in [c["source"] for c in reply["answer"]["citations"]]


def test_index_folder_deleted_while_the_app_runs_is_reported_and_rebuilt_from_the_sidebar(monkeypatch, fresh_index):
    import shutil

    at = finish_first_build(start_app(monkeypatch, fresh_index.notes_dir, fresh_index.chroma_dir))
    assert not at.exception and not at.error, [e.value for e in at.error]
    shutil.rmtree(fresh_index.chroma_dir)

    at.run()
    assert not at.exception
    assert any("was deleted or moved" in e.value for e in at.sidebar.error)
    reply = ask(at, "How long can a Lambda function run?")
    assert "was deleted or moved" in reply.get("error", "") and "python -m ingest --rebuild" in reply["error"]

    next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    assert any("Re-indexed" in s.value for s in at.sidebar.success)
    reply = ask(at, "How long can a Lambda function run?")
    assert reply["answer"]["citations"][0]["anchor"] == "15"


def test_search_scope_filters_by_note(app):
    app.sidebar.selectbox[0].select("aws-notes.md").run()
    reply = ask(app, "How long can a Lambda function run?")

    assert reply["scope"] == "aws-notes.md"
    assert all(s["source"] == "aws-notes.md" for s in reply["answer"]["retrieved"])


@pytest.fixture
def reports_dir(monkeypatch, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    monkeypatch.setattr("ui.evaluation.REPORTS_DIR", folder)
    return folder


def test_evaluation_page_without_a_report_says_how_to_make_one(app, reports_dir):
    app.switch_page("ui/pages/evaluation.py").run()

    assert not app.exception
    assert any("python -m eval" in i.value for i in app.info)


def test_evaluation_page_shows_the_report_and_charts(app, reports_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.bar(["R@1", "R@5"], [0.9, 1.0])
    fig.savefig(reports_dir / "recall.png")
    fig.savefig(reports_dir / "latency.png")
    (reports_dir / "report.md").write_text("# Evaluation\n\nRecall@5: **1.00**, cost $0\n\n![recall](recall.png)\n")
    (reports_dir / "report.json").write_text('{"recall_at_5": 1.0}')
    app.switch_page("ui/pages/evaluation.py").run()

    assert not app.exception
    assert any("Recall@5" in m.value for m in app.markdown)
    assert len(app.get("image")) == 2  # the chart linked in place, and the other one under "Charts"


# ---- the pure helpers behind the pages ----------------------------------------------------------

def test_note_url_is_a_deep_link():
    from ui.links import note_url, read_deep_link

    url = note_url("sub dir/aws-notes.md", "15", "Up to 900 seconds (15 minutes).")
    assert url == ("notes?note=sub%20dir%2Faws-notes.md&anchor=15"
                   "&quote=Up%20to%20900%20seconds%20%2815%20minutes%29.#15")
    assert read_deep_link({"note": ["a.md"], "anchor": "15"}).note == "a.md"


def test_escape_markdown_shows_html_and_markup_literally():
    from ui.markdown import escape_markdown

    assert escape_markdown("<script>x</script> $5 *a*") == "\\<script\\>x\\</script\\> \\$5 \\*a\\*"


def test_note_html_keeps_a_safe_subset_and_drops_scripts_handlers_and_unsafe_links():
    from ui.notes import display_html

    body = ('<script>window.__pwned=1</script>\n\nSee <a href="https://aws.amazon.com" onclick="x()">AWS</a>, '
            '[bad](javascript:alert(1)), <a href="data:text/html,hi">data</a>, [other](other.md#x), '
            '<img src="pic.png" alt="diagram" onerror="x()"> costs $5 <kbd>Ctrl</kbd>')
    shown, _ = display_html(body, "aws-notes.md", notes={"other.md"})
    assert "script" not in shown and "__pwned" not in shown and "onclick" not in shown and "onerror" not in shown
    assert '<a href="https://aws.amazon.com" rel="noopener noreferrer">AWS</a>' in shown
    assert "javascript:" not in shown and "data:" not in shown and "bad" in shown and ">data</a>" in shown
    assert 'href="notes?note=other.md&amp;anchor=x#x"' in shown
    assert "<em>[image: diagram]</em>" in shown and "costs $5" in shown and "<kbd>Ctrl</kbd>" in shown


def test_reference_links_and_autolinks_with_unsafe_targets_are_not_links_on_the_notes_page():
    from ui.notes import display_markdown

    shown, _ = display_markdown(
        "Click [here][r] or [there][d], <javascript:alert(1)>, <data:text/html,hi>, <https://example.com>.\n\n"
        "[r]: javascript:alert(document.cookie)\n[d]: <data:text/html;base64,PHNjcmlwdD4=> \"t\"\n"
        "[ok]: https://example.com/docs\n[x]: the docs say so", "a.md")
    assert "]: javascript" not in shown and "(javascript:" not in shown
    assert "[r]:" not in shown and "[d]:" not in shown and "data:text/html;base64" not in shown
    assert "<javascript:" not in shown and "<data:" not in shown and "<https://example.com>" in shown
    assert "[ok]: https://example.com/docs" in shown and "[x]: the docs say so" in shown


def test_exported_markdown_escapes_html_from_notes_and_questions():
    from ui.export import conversation_markdown

    messages = [{"role": "user", "content": "What does <script>alert(1)</script> do?"},
                {"role": "assistant", "content": "", "answer": {
                    "abstained": False, "answer": "It runs <img src=x onerror=alert(1)> and `<b>` [1].",
                    "citations": [{"n": 1, "heading_path": ["Web", "<i>XSS</i>"], "url": "web.md#xss",
                                   "quote": "It runs <img src=x onerror=alert(1)> and `<b>`."}]}}]
    import re

    exported = conversation_markdown(messages)
    assert re.search(r"(?<!\\)<", re.sub(r"`[^`]*`", "", exported)) is None  # every tag outside code is escaped
    assert "\\<script>alert(1)\\</script>" in exported and "`<b>`" in exported  # shown as text, code as code


def test_quote_is_highlighted_line_by_line_and_code_is_left_alone():
    import re

    from ui.notes import display_html

    body = "Intro:\n- one thing,\n- two things\n\n```\n$ echo <b>\n```"
    shown, found = display_html(body, quote="Intro:\n- one thing,\n- two things")
    assert found
    assert re.findall(r"<mark[^>]*>(.*?)</mark>", shown) == ["Intro:", "one thing,", "two things"]
    assert "<code>$ echo &lt;b&gt;&#10;</code>" in shown


def test_conversation_markdown_lists_citations():
    from ui.export import conversation_markdown

    messages = [
        {"role": "user", "content": "How long can a Lambda function run?"},
        {"role": "assistant", "content": "Up to 900 seconds [1].", "answer": {
            "answer": "Up to 900 seconds [1].", "abstained": False, "retrieved": [],
            "citations": [{"n": 1, "source": "aws-notes.md", "anchor": "15", "heading": "Lambda Limits",
                           "heading_path": ["Serverless", "Lambda", "Lambda Limits"],
                           "quote": "Maximum execution time: 900 seconds (15 minutes).",
                           "url": "aws-notes.md#15"}]}},
    ]
    text = conversation_markdown(messages)
    assert "## How long can a Lambda function run?" in text
    assert "1. Serverless › Lambda › Lambda Limits (aws-notes.md#15)" in text
    assert "> Maximum execution time: 900 seconds (15 minutes)." in text


def test_history_for_ask_skips_errors_and_markers():
    from ui.answers import history_for_ask

    history = history_for_ask([
        {"role": "user", "content": "Tell me about DynamoDB Streams"},
        {"role": "assistant", "content": "They keep data 24 hours [1]."},
        {"role": "user", "content": "broken"}, {"role": "assistant", "content": "", "error": "x"},
    ])
    assert history == [{"role": "user", "content": "Tell me about DynamoDB Streams"},
                       {"role": "assistant", "content": "They keep data 24 hours."},
                       {"role": "user", "content": "broken"}]



def test_llm_mode_with_an_unreachable_model_falls_back_cleanly(monkeypatch, seed_settings):
    from conftest import free_port

    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("LLM_MODEL", "local-test")
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    assert not at.exception, at.exception
    mode = at.sidebar.radio[0]
    assert not mode.disabled and mode.value == "LLM"
    reply = ask(at, "How long can a Lambda function run?")
    assert reply["answer"]["mode"] == "extractive" and "900 seconds" in reply["content"]
    assert "could not be reached" in reply["answer"]["notice"]
    assert any("could not be reached" in c.value for c in at.chat_message[1].caption)


def test_notes_changed_on_disk_are_flagged_above_the_chat_with_a_one_click_reindex(monkeypatch, fresh_index):
    from ui import state

    at = finish_first_build(start_app(monkeypatch, fresh_index.notes_dir, fresh_index.chroma_dir))
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not [w for w in at.warning if "changed on disk" in w.value]

    note = fresh_index.notes_dir / "aws-notes.md"
    note.write_text(note.read_text() + "\n## Kafka\n\nKafka keeps messages for 7 days by default.\n")
    state._notes_stamp.clear()  # the folder is looked at every few seconds; do not wait for it
    at.run()
    assert any("changed on disk" in w.value for w in at.warning)

    at.button(key="stale_reindex").click().run()
    assert not at.exception
    at.run()
    assert not [w for w in at.warning if "changed on disk" in w.value]
    reply = ask(at, "How many days does Kafka keep messages by default?")
    assert "7 days" in reply["answer"]["answer"]


def test_front_matter_titles_name_notes_and_tags_filter_the_search(monkeypatch, tmp_path, model):
    import shutil

    from conftest import FIXTURES, make_settings
    from ingest.index import sync_index

    notes = tmp_path / "vault"
    shutil.copytree(FIXTURES / "obsidian", notes)
    settings = make_settings(notes, tmp_path / ".chroma")
    sync_index(settings, model, progress=False)
    at = start_app(monkeypatch, notes, settings.chroma_dir)
    assert not at.exception and not at.error, [e.value for e in at.error]

    tags = at.sidebar.multiselect[0]
    assert tags.options == ["aws", "serverless"]
    tags.select("aws").run()
    assert at.sidebar.selectbox[0].options == ["All notes", "Serverless functions.md"]
    reply = ask(at, "What does provisioned concurrency do?")
    assert reply["scope"] == "notes tagged aws"
    assert {s["source"] for s in reply["answer"]["retrieved"]} == {"Serverless functions.md"}

    at.sidebar.multiselect[0].unselect("aws").run()
    reply = ask(at, "What does provisioned concurrency do?")
    assert reply["answer"]["citations"][0]["source"] == "Cold starts.md"
    assert reply["answer"]["citations"][0]["title"] == "Cold starts"

    at.switch_page("ui/pages/notes.py").run()
    assert not at.exception
    assert any("Cold starts" in c.value and "Tags:" in c.value and "`serverless`" in c.value for c in at.caption)


def test_a_question_outside_the_selected_section_offers_to_search_all_notes(app):
    app.sidebar.selectbox[0].select("aws-notes.md").run()
    app.sidebar.selectbox[1].set_value(("25", "DynamoDB Accelerator (DAX)", 3)).run()
    reply = ask(app, "How long can a Lambda function run?")
    assert reply["answer"]["abstained"] and " › " in reply["scope"]
    shown = texts(app.chat_message[1])
    assert "Not in the selected section" in shown and "Not in your notes" not in shown
    app.button(key="everywhere-1").click().run()
    assert not app.exception
    last = app.session_state["messages"][-1]
    assert not last["answer"]["abstained"] and last["scope"] is None and "900 seconds" in last["answer"]["answer"]
    assert app.sidebar.selectbox[0].value == "All notes"


def test_a_paste_longer_than_the_limit_is_trimmed_with_a_notice(app):
    reply = ask(app, "How long can a Lambda function run? " + "Please be precise. " * 200)
    assert "trimmed to its first 2000 characters" in (reply["answer"]["notice"] or "")
    assert any("trimmed" in c.value for c in app.chat_message[1].caption)


def test_evaluation_page_picks_among_report_folders_newest_first(app, reports_dir, tmp_path, monkeypatch):
    import os
    import time

    (reports_dir / "seed").mkdir()
    (reports_dir / "seed" / "report.md").write_text("# Seed report\n")
    elsewhere = tmp_path / "my-run"
    elsewhere.mkdir()
    time.sleep(0.05)
    (elsewhere / "report.md").write_text("# A run written with --out\n")
    monkeypatch.setenv("EVAL_REPORTS", os.pathsep.join([str(elsewhere), str(tmp_path / "missing")]))
    app.switch_page("ui/pages/evaluation.py").run()

    assert not app.exception
    picker = next(s for s in app.selectbox if s.label == "Report")
    shown = [str(o).split(" · ")[0] for o in picker.options]
    assert len(shown) == 2 and shown[0].endswith("my-run") and shown[1].endswith("seed")
    assert any("A run written with --out" in m.value for m in app.markdown)
    picker.select_index(1).run()
    assert any("Seed report" in m.value for m in app.markdown)


def test_the_conversation_survives_a_reload_and_new_chat_starts_over(monkeypatch, seed_settings, tmp_path):
    monkeypatch.setenv("APP_DB", str(tmp_path / "app.sqlite3"))
    first = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    ask(first, "How long can a Lambda function run?")
    conversation = first.query_params["c"]
    assert conversation

    reloaded = AppTest.from_file(str(APP), default_timeout=TIMEOUT)  # a browser reload: a new session, same URL
    reloaded.query_params["c"] = conversation
    reloaded.run()
    assert not reloaded.exception
    assert [m["role"] for m in reloaded.session_state["messages"]] == ["user", "assistant"]
    assert "900 seconds" in texts(reloaded.chat_message[1])

    next(b for b in reloaded.button if b.label == "New chat").click().run()
    assert reloaded.session_state["messages"] == [] and reloaded.query_params["c"] != conversation


def test_a_crafted_conversation_link_never_collects_the_visitors_questions(monkeypatch, seed_settings, tmp_path):
    from qa.records import Records

    db = tmp_path / "app.sqlite3"
    monkeypatch.setenv("APP_DB", str(db))
    sender = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    ask(sender, "What is DAX?")
    own = sender.query_params["c"]
    assert len(own) >= 22 and own != "sender-chosen-id"  # an unguessable token the server issued

    for link in ("sender-chosen-id", own):  # an id the sender made up, and the sender's own conversation
        victim = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        victim.query_params["c"] = link
        victim.run()
        assert not victim.exception
        reply = ask(victim, "How long can a Lambda function run?")
        assert "900 seconds" in reply["content"]
        filed = victim.query_params["c"]
        assert filed not in (link, own) and len(filed) >= 22
        assert Records(db).load_conversation("sender-chosen-id") is None
        assert [m["content"] for m in Records(db).load_conversation(own) if m["role"] == "user"] == ["What is DAX?"]
    assert [m["content"] for m in Records(db).load_conversation(filed) if m["role"] == "user"] == [
        "What is DAX?", "How long can a Lambda function run?"]  # the shown turns continue in the visitor's own


def test_run_sh_listens_on_loopback_only_by_default(tmp_path):
    import os
    import socket
    import subprocess

    from conftest import REPO, free_port
    from bench.processes import run_process, wait_for_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_"))}
    with run_process(["bash", str(REPO / "scripts" / "run.sh"), "--server.port", str(port)], tmp_path / "run.log",
                     env=env, cwd=tmp_path) as proc:
        wait_for_port(port, timeout=120, proc=proc)
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split() and all(line.split()[3] == f"127.0.0.1:{port}"
                                         for line in listening.splitlines()), listening
        outside = socket.gethostbyname(socket.gethostname())
        if not outside.startswith("127."):  # this machine's network address: nothing answers there
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=2).close()


def interrupt_call(monkeypatch, owner, name: str, *, number: int = 1) -> list[int]:
    """Make call `number` of `owner.name` end the script run the way Streamlit does when the user sends another
    question or clicks while it runs (StopException at a Streamlit call); returns the call count."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    real, calls = getattr(owner, name), [0]

    def interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == number:
            raise StopException()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, interrupted)
    return calls


def test_a_question_interrupted_by_the_next_one_is_answered_first_never_left_unanswered(
        monkeypatch, seed_settings, tmp_path):
    from qa.records import Records

    monkeypatch.setenv("APP_DB", str(tmp_path / "app.sqlite3"))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    from qa.service import NotesQA

    interrupt_call(monkeypatch, NotesQA, "ask")
    at.chat_input[0].set_value("How long can a Lambda function run?").run()  # stopped while answering
    assert not at.exception and at.session_state["messages"] == []
    reply = ask(at, "What does DAX cache?")  # sent 0.3 s later
    turns = at.session_state["messages"]
    assert [(m["role"], m["content"][:40]) for m in turns[::2]] == [
        ("user", "How long can a Lambda function run?"), ("user", "What does DAX cache?")]
    assert "900 seconds" in turns[1]["content"] and "DAX" in reply["content"] and not reply.get("error")
    stored = Records(tmp_path / "app.sqlite3").load_conversation(at.query_params["c"])
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]


def test_a_rebuild_interrupted_by_a_click_finishes_and_leaves_a_working_index(monkeypatch, fresh_index, model):
    import shutil
    import time

    from ingest.index import sync_index
    from qa.store import open_index

    first = sync_index(fresh_index, model, progress=False)
    at = start_app(monkeypatch, fresh_index.notes_dir, fresh_index.chroma_dir)
    shutil.rmtree(fresh_index.chroma_dir)
    at.run()
    assert any("was deleted or moved" in e.value for e in at.sidebar.error)
    # The user types while it rebuilds: the run is stopped at its first progress update, after the drop.
    from streamlit.delta_generator import DeltaGenerator

    calls = interrupt_call(monkeypatch, DeltaGenerator, "progress", number=2)
    next(b for b in at.sidebar.button if b.label == "Rebuild the index").click().run()
    assert calls[0] >= 2 and not at.exception
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # no further run of the page: the rebuild goes on by itself
        try:
            state = open_index(fresh_index, model=model.name).read_state()
        except Exception:  # noqa: BLE001 - not created yet
            state = None
        if state is not None and state.generation > first.generation and state.chunks == first.chunks:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the interrupted rebuild did not finish")
    at.run()
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    reply = ask(at, "How long can a Lambda function run?")
    assert not reply.get("error") and reply["answer"]["citations"][0]["anchor"] == "15"


def test_feedback_is_kept_with_the_answer_and_survives_a_restart(monkeypatch, seed_settings, tmp_path):
    from qa.records import Records

    monkeypatch.setenv("APP_DB", str(tmp_path / "app.sqlite3"))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    ask(at, "How long can a Lambda function run?")
    ask(at, "What is the maximum message size in SQS?")
    at.feedback[0].set_value(1).run()  # 👍
    at.feedback[1].set_value(0).run()  # 👎
    at.pills[0].set_value("should have refused").run()
    assert not at.exception
    assert any(c.language == "markdown" and "900 seconds" in c.value for c in at.code)  # what "Copy" copies

    stored = Records(tmp_path / "app.sqlite3").feedback()  # read back as after a restart
    assert [(f.turn, f.rating, f.comment) for f in stored] == [(1, 1, ""), (3, 0, "should have refused")]
    assert stored[0].answer["citations"][0]["url"] == "aws-notes.md#15" and stored[0].generation >= 1
    assert stored[1].question == "What is the maximum message size in SQS?"


def captions(at) -> list[str]:
    """The captions as a reader sees them (Markdown escapes and the icon taken off)."""
    import re

    return [re.sub(r"\\(.)", r"\1", c.value).removeprefix(":material/save: ") for c in at.caption]


def read_only_sqlite(monkeypatch):
    """APP_DB as a read-only file is for a user who is not root (the tests run as root): SQLite's own
    read-only mode gives the same error, "attempt to write a readonly database"."""
    import sqlite3

    real = sqlite3.connect
    monkeypatch.setattr("qa.records.sqlite3.connect",
                        lambda path, **kw: real(f"file:{path}?mode=ro", uri=True, **kw))


def test_a_read_only_app_db_is_one_sentence_and_answers_keep_working(monkeypatch, seed_settings, tmp_path):
    from qa.records import Records

    db = tmp_path / "app.sqlite3"
    Records(db)
    monkeypatch.setenv("APP_DB", str(db))
    read_only_sqlite(monkeypatch)
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    reply = ask(at, "How long can a Lambda function run?")
    assert "900 seconds" in reply["content"] and not reply.get("error")
    assert [w.value for w in at.warning] == [
        f"The conversations file {db} (APP_DB) is read-only: make it writable or set APP_DB to another file; "
        "answers still work, they are just not kept."]
    at.feedback[0].set_value(1).run()  # 👍 is not kept either, and says so the same way
    assert not at.exception and "is read-only" in at.warning[0].value


def test_an_app_db_of_another_program_is_left_alone_with_one_sentence(monkeypatch, seed_settings, tmp_path, reports_dir):
    import sqlite3

    db = tmp_path / "invoices.sqlite3"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE invoices (number INTEGER, total REAL)")
    monkeypatch.setenv("APP_DB", str(db))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    reply = ask(at, "How long can a Lambda function run?")
    assert "900 seconds" in reply["content"] and not at.warning
    message = (f"The file {db} set as APP_DB holds other data (tables invoices): set APP_DB to a new file (it is "
               "created); answers still work, they are just not kept.")
    assert message in captions(at)
    at.switch_page("ui/pages/evaluation.py").run()
    assert not at.exception and message in captions(at)
    with sqlite3.connect(db) as other:
        assert [n for (n,) in other.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_a_damaged_row_in_app_db_breaks_neither_the_evaluation_page_nor_the_conversation(
        monkeypatch, seed_settings, tmp_path, reports_dir):
    import sqlite3

    from qa.records import Records

    db = tmp_path / "app.sqlite3"
    store = Records(db)
    store.rate("c1", 1, question="What is DAX?", history=[], answer={"citations": []}, generation=1, rating=0)
    store.rate("c1", 3, question="What is SQS?", history=[], answer={"citations": []}, generation=1, rating=0)
    store.save_conversation("c2", [{"role": "user", "content": "hi"}])
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE feedback SET answer = '{not json' WHERE turn = 3")
        raw.execute("UPDATE conversations SET messages = '[{broken' WHERE id = 'c2'")
    monkeypatch.setenv("APP_DB", str(db))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    at.switch_page("ui/pages/evaluation.py").run()
    assert not at.exception
    assert any("👎 2" in m.value for m in at.markdown)
    assert f"1 of the ratings in {db} are damaged and left out." in captions(at)
    assert any("What is DAX?" in c.value for c in at.caption)  # the latest readable 👎

    reloaded = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    reloaded.query_params["c"] = "c2"
    reloaded.run()
    assert not reloaded.exception and reloaded.session_state["messages"] == []
    assert [w.value for w in reloaded.warning] == [
        f"The conversation c2 in {db} (APP_DB) is damaged and cannot be shown: it starts over here, in a new "
        "conversation (the damaged one is left as it is)."]
    assert "900 seconds" in ask(reloaded, "How long can a Lambda function run?")["content"]
    filed = reloaded.query_params["c"]  # a session writes only to conversations it started (issue 20, item 9)
    assert filed != "c2" and [m["role"] for m in Records(db).load_conversation(filed)] == ["user", "assistant"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT messages FROM conversations WHERE id = 'c2'").fetchone() == ("[{broken",)


def test_feedback_export_with_a_bad_db_or_export_path_says_so_in_one_line(tmp_path):
    import sqlite3

    from conftest import run_cli
    from qa.records import Records

    other = tmp_path / "invoices.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (number INTEGER)")
    good = tmp_path / "app.sqlite3"
    Records(good).rate("c", 1, question="What is DAX?", history=[], answer={"citations": []}, generation=1, rating=1)
    for args, expected in (
            (["--db", str(other), "--export", str(tmp_path / "x.jsonl")], "holds other data (tables invoices)"),
            (["--db", str(good), "--export", str(tmp_path / "missing" / "x.jsonl")], "cannot write"),
            (["--db", str(tmp_path / "garbage.sqlite3"), "--export", str(tmp_path / "x.jsonl")], "is not a SQLite")):
        if "garbage" in args[1]:
            (tmp_path / "garbage.sqlite3").write_bytes(b"not a database at all " * 100)
        done = run_cli("-m", "eval.feedback", *args)
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_feedback_exports_as_eval_items_that_validate_and_the_evaluation_page_counts_it(
        monkeypatch, notes_qa, seed_settings, tmp_path, reports_dir):
    import json

    from conftest import run_cli
    from qa.records import Records

    records = Records(tmp_path / "app.sqlite3")
    good = notes_qa.ask("How long can a Lambda function run?")
    bad = notes_qa.ask("What is the maximum message size in SQS?")
    vague = notes_qa.ask("What does DAX cache?")
    for turn, (answer, rating, why) in enumerate([(good, 1, ""), (bad, 0, "should have refused"),
                                                  (vague, 0, "too long")]):
        records.rate("c1", turn, question=answer.question, history=[], answer=answer.to_dict(),
                     generation=answer.retrieval.generation, rating=rating, comment=why)
    out = tmp_path / "from-feedback.jsonl"
    env = {"NOTES_DIR": str(seed_settings.notes_dir), "CHROMA_DIR": str(seed_settings.chroma_dir),
           "APP_DB": str(tmp_path / "app.sqlite3")}
    done = run_cli("-m", "eval.feedback", "--export", str(out), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 rated questions written" in done.stdout and "1 left out" in done.stdout
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert items[0]["answerable"] and items[0]["reference_anchors"] == ["aws-notes.md#15"]
    assert items[1] == {"id": "fb002", "question": bad.question, "type": "fact", "answerable": False,
                        "reference_anchors": [], "key_facts": []}
    checked = run_cli("-m", "eval", "--questions", str(out), "--out", str(tmp_path / "report"), env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr  # the export round-trips through the evaluation
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["items"][0]["scores"]["key_fact_recall"] == 1.0 and report["items"][1]["abstained"]

    monkeypatch.setenv("APP_DB", str(tmp_path / "app.sqlite3"))
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    at.switch_page("ui/pages/evaluation.py").run()
    assert not at.exception
    assert any("👍 1 · 👎 2" in m.value for m in at.markdown)
    assert any("What does DAX cache?" in c.value for c in at.caption)  # the latest 👎, to ask again


@pytest.fixture
def ollama_stand_in():
    """A loopback server speaking the two calls of Ollama's API the app makes: /api/tags and /api/chat."""
    import json
    import re
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    calls = []

    class Ollama(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            calls.append(self.path)
            models = [{"name": "llama3.2:latest", "model": "llama3.2:latest"}, {"name": "qwen2.5:3b", "model": "qwen2.5:3b"}]
            self._send(json.dumps({"models": models}).encode(), "application/json")

        def do_POST(self):
            calls.append(self.path)
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = request["messages"][-1]["content"]
            cited = next((n for n, text in re.findall(r'<passage n="(\d+)"[^>]*>(.*?)</passage>', prompt, re.S)
                          if "900 seconds" in text), "1")
            reply = f"A Lambda function can run for at most 900 seconds (15 minutes) [{cited}]."
            lines = [{"model": request["model"], "created_at": "2026-12-02T00:00:00Z",
                      "message": {"role": "assistant", "content": reply}, "done": False},
                     {"model": request["model"], "created_at": "2026-12-02T00:00:00Z",
                      "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}]
            if not request.get("stream", True):
                lines = [dict(lines[0], done=True, done_reason="stop")]
            self._send("".join(json.dumps(line) + "\n" for line in lines).encode(), "application/x-ndjson")

    from conftest import free_port

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Ollama)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", calls
    server.shutdown()


def test_an_ollama_on_this_machine_is_offered_not_switched_to(monkeypatch, seed_settings, ollama_stand_in):
    url, calls = ollama_stand_in
    monkeypatch.setenv("OLLAMA_URL", url)
    at = start_app(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir)
    assert not at.exception and "/api/tags" in calls
    mode = at.sidebar.radio[0]
    assert not mode.disabled and mode.value == "Notes only (extractive)"  # offered, extractive stays the default
    assert at.sidebar.selectbox(key="ollama_model").options == ["llama3.2:latest", "qwen2.5:3b"]

    reply = ask(at, "How long can a Lambda function run?")
    assert reply["answer"]["mode"] == "extractive"
    mode.set_value("LLM").run()
    reply = ask(at, "How long can a Lambda function run?")
    assert reply["answer"]["mode"] == "llm", reply["answer"].get("notice")
    assert "900 seconds" in reply["answer"]["answer"] and "/api/chat" in calls
    assert reply["answer"]["citations"][0]["anchor"] == "15"
