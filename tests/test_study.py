"""Study mode without the UI: cards from the notes, FSRS schedules in a real SQLite file, regeneration when
the notes change, grading, coverage, export and the `python -m study` commands."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest

from ingest.index import load_corpus
from study.cards import BLANK, KINDS, make_cards, plain
from study.deck import Scope, open_deck, study_queue
from study.grade import MAX_TYPED_CHARS, grade_answer
from study.store import CardGone, StudyStore
from tests.conftest import CORPORA, SEED_NOTE, make_settings, run_cli

DAY = 86400.0


@pytest.fixture(scope="module")
def seed_cards():
    return make_cards(load_corpus(SEED_NOTE.parent).notes)


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    shutil.copyfile(SEED_NOTE, folder / "aws-notes.md")
    return folder


@pytest.fixture
def settings(tmp_path, notes):
    return make_settings(notes, tmp_path / ".chroma", app_db=tmp_path / "app.sqlite3")


def test_every_card_blanks_one_thing_the_quote_says_and_shows_no_markup(seed_cards):
    assert len(seed_cards) >= 30
    for card in seed_cards:
        assert card.prompt.count(BLANK) == 1, card
        assert card.kind in KINDS
        assert plain(card.answer) in plain(card.quote), card
        assert not any(mark in card.prompt for mark in ("`", "**", "](", "<a", "</")), card
        assert card.id and card.anchor and card.heading


def test_the_lambda_time_limit_is_a_figure_card_with_its_citation(seed_cards):
    card = next(c for c in seed_cards if c.prompt.startswith("Maximum execution time"))
    assert card.answer == "900 seconds (15 minutes)" and card.kind == "figure"
    assert card.prompt == f"Maximum execution time: {BLANK}."  # the figure in brackets would give it away
    assert grade_answer("900 seconds", card.answer).verdict == grade_answer("15 minutes", card.answer).verdict == "right"
    assert card.source == "aws-notes.md" and card.anchor == "15" and "Lambda Limits" in card.heading


def _cards_of(markdown: str):
    from notes.parse import parse_note

    return make_cards([parse_note(markdown, "n.md")])


def test_a_defined_name_becomes_a_term_card_and_a_figure_keeps_its_unit():
    cards = _cards_of("# Containers\n\nAWS Fargate is a serverless compute engine that runs containers for you.\n\n"
                      "## Limits\n\n- Task storage: 200 GiB at most, per task.\n")
    term = next(c for c in cards if c.kind == "term")
    assert term.answer == "AWS Fargate" and term.prompt.startswith(f"{BLANK} is a serverless compute engine")
    figure = next(c for c in cards if c.kind == "figure")
    assert figure.answer == "200 GiB" and figure.anchor == "limits"


@pytest.mark.parametrize("markdown", [
    "# Storage\n\nThe table offers Infrequent Access (IA) classes for rarely read items.\n",  # spelled out beside it
    "# Languages\n\nFunctions can be written in Go, Java, Ruby, Python and many others.\n",  # one of a list
    "# DynamoDB\n\nThe service called DynamoDB stores items of up to 400 KB in tables.\n",  # the heading says it
    "# Setup\n\nIt also needs Terraform to create the buckets and the queues.\n",  # points back
    "# Setup\n\nYou can install the tool with `pipx install poetry` and `pip` alike.\n",  # code in the prompt
])
def test_cards_that_give_away_or_cannot_be_answered_are_not_kept(markdown):
    assert [c for c in _cards_of(markdown) if c.kind != "figure"] == []


def test_shared_corpora_give_cards_with_commands_answered_and_no_code_in_prompts():
    for name in ("og-aws", "poetry-docs"):
        folder = CORPORA / name
        if not folder.is_dir():
            pytest.skip(f"{folder} is not here")
        cards = make_cards(load_corpus(folder).notes)
        assert len(cards) > 50
        assert all("`" not in c.prompt and c.prompt.count(BLANK) == 1 for c in cards)
        assert len({c.id for c in cards}) == len(cards)
        if name == "poetry-docs":
            assert any(c.kind == "command" and c.answer.startswith("--") for c in cards)


def test_cards_keep_their_ids_when_another_section_changes(notes, seed_cards):
    text = (notes / "aws-notes.md").read_text()
    (notes / "aws-notes.md").write_text(text.replace("Maximum execution time: 900 seconds",
                                                     "Maximum execution time: 901 seconds"))
    edited = make_cards(load_corpus(notes).notes)
    before, after = {c.id for c in seed_cards}, {c.id for c in edited}
    changed = [c for c in seed_cards if c.id in before - after]
    assert changed and all("900 seconds" in c.quote for c in changed)
    assert all(c.id in after for c in seed_cards if "900 seconds" not in c.quote)
    assert any(c.answer.startswith("901 seconds") for c in edited if c.id in after - before)


def test_ratings_are_scheduled_by_fsrs_and_kept_in_sqlite(settings):
    deck = open_deck(settings, now=0.0)
    queue = study_queue(deck.store, now=0.0)
    assert queue.due == 0 and queue.new == settings.study_new_per_day
    first, second = queue.cards[0].card, queue.cards[1].card
    easy = deck.store.review(first.id, "easy", verdict="right", typed=first.answer, now=10.0)
    again = deck.store.review(second.id, "again", verdict="wrong", typed="no idea", now=10.0)
    assert easy.interval_s >= DAY > again.interval_s > 0
    with sqlite3.connect(settings.app_db) as db:
        rows = db.execute("SELECT card, rating, verdict, typed FROM study_reviews ORDER BY id").fetchall()
    assert rows == [(first.id, 4, "right", first.answer), (second.id, 1, "wrong", "no idea")]
    later = study_queue(deck.store, now=10.0 + again.interval_s + 1)
    assert later.cards[0].card.id == second.id and later.due == 1  # due cards come before new ones
    assert first.id not in {c.card.id for c in later.cards}
    assert StudyStore(settings.app_db).retrievability(deck.store.card(first.id), now=10.0 + 2 * DAY) < 1.0


def test_editing_a_section_regenerates_its_cards_and_keeps_the_history_of_unchanged_ones(settings, notes):
    deck = open_deck(settings, now=0.0)
    limit = next(c for c in deck.cards if c.prompt.startswith("Maximum execution time"))
    memory = next(c for c in deck.cards if c.prompt.startswith("Memory allocation"))
    for card in (limit, memory):
        deck.store.review(card.id, "good", now=1.0)
    note = notes / "aws-notes.md"
    note.write_text(note.read_text().replace("Maximum execution time: 900 seconds", "Maximum execution time: 901 seconds"))
    again = open_deck(settings, now=2.0)
    assert again.synced.added >= 1 and again.synced.retired >= 1
    assert deck.store.card(limit.id).retired == 2.0  # retired, not deleted: its reviews stay
    assert deck.store.card(memory.id).reviews == 1 and deck.store.card(memory.id).retired is None
    new = next(c for c in again.cards if c.prompt.startswith("Maximum execution time"))
    assert deck.store.card(new.id).is_new and new.answer.startswith("901 seconds")
    with pytest.raises(CardGone, match="no longer in your notes"):
        again.store.review(limit.id, "good", now=3.0)
    note.write_text(note.read_text().replace("901 seconds", "900 seconds"))
    back = open_deck(settings, now=4.0)
    assert back.synced.revived >= 1 and deck.store.card(limit.id).reviews == 1


def test_a_deleted_section_retires_its_cards_mid_quiz(settings, notes):
    deck = open_deck(settings, now=0.0)
    card = next(c for c in deck.cards if c.anchor == "15")
    note = notes / "aws-notes.md"
    text = note.read_text()
    start = text.index('<a name="15"></a>')
    note.write_text(text[:start] + text[text.index('<a name="16"></a>'):])
    open_deck(settings, now=1.0)
    with pytest.raises(CardGone):
        deck.store.review(card.id, "good", now=2.0)
    assert all(c.card.anchor != "15" for c in study_queue(deck.store, now=2.0).cards)


def test_reindexing_keeps_schedules(settings, model):
    from ingest.index import sync_index

    deck = open_deck(settings, now=0.0)
    card = deck.cards[0]
    deck.store.review(card.id, "good", now=1.0)
    sync_index(settings, model, progress=False)
    sync_index(settings, model, rebuild=True, progress=False)
    assert StudyStore(settings.app_db).card(card.id).reviews == 1
    assert open_deck(settings, now=2.0).synced.added == 0


def test_scope_limits_cards_to_a_section_and_those_under_it(settings):
    deck = open_deck(settings, now=0.0)
    lambda_cards = [c for c in deck.cards if Scope(anchor="11").covers(c)]
    assert lambda_cards and {c.anchor for c in lambda_cards} > {"15"}
    assert all("Lambda" in c.heading for c in lambda_cards)
    assert not [c for c in deck.cards if Scope(source="other.md").covers(c)]


@pytest.mark.parametrize("typed, verdict", [
    ("900 seconds", "right"), ("900 Seconds.", "right"), ("900seconds", "right"), ("901 seconds", "wrong"),
    ("", "blank"), ("  ", "blank"), ("15 minutes", "wrong"), ("900 secnds", "close"),
])
def test_typed_answers_are_graded_with_figures_exact_and_typos_close(typed, verdict):
    assert grade_answer(typed, "900 seconds").verdict == verdict


def test_names_allow_a_typo_and_bracketed_alternatives():
    assert grade_answer("Dynamo DB", "DynamoDB").verdict == "close"
    assert grade_answer("lambda@edge", "Lambda@Edge").verdict == "right"
    assert grade_answer("-a", "--all (-a)").verdict == "right"
    assert grade_answer("S3", "EC2").verdict == "wrong"


def test_a_ten_thousand_character_answer_is_cut_and_graded():
    grade = grade_answer("x" * 10_000, "DynamoDB")
    assert grade.verdict == "wrong" and len(grade.typed) == MAX_TYPED_CHARS
    assert f"first {MAX_TYPED_CHARS} characters" in grade.message


def test_coverage_counts_reviews_retrievability_and_chat_citations(settings):
    from qa.records import Records
    from study.coverage import section_coverage, study_days

    deck = open_deck(settings, now=0.0)
    card = next(c for c in deck.cards if c.anchor == "15")
    deck.store.review(card.id, "good", now=1.0)
    cited = {"source": "aws-notes.md", "anchor": "15"}
    Records(settings.app_db).save_conversation("c1", [
        {"role": "user", "content": "How long can a Lambda run?"},
        {"role": "assistant", "content": "…", "answer": {"citations": [cited, cited], "retrieved": [cited]}}])
    rows = {r.anchor: r for r in section_coverage(deck.corpus, deck.store, now=2.0)}
    assert rows["15"].reviews == 1 and 0.9 < rows["15"].retrievability <= 1.0
    assert rows["15"].asked == 1 and rows["15"].cited == 1
    assert rows["16"].retrievability is None and rows["16"].reviews == 0
    assert [d.reviews for d in study_days(deck.store)] == [1]
    forgotten = next(c for c in deck.cards if c.anchor == "13")
    deck.store.review(forgotten.id, "again", now=1.0)
    assert {r.anchor: r for r in section_coverage(deck.corpus, deck.store, now=2.0)}["13"].retrievability == 0.0


def test_export_writes_an_anki_package_and_csv_linking_back(settings, tmp_path):
    from study.export import write_apkg, write_csv

    deck = open_deck(settings)
    assert write_apkg(deck.cards, tmp_path / "deck.apkg") == len(deck.cards)
    with zipfile.ZipFile(tmp_path / "deck.apkg") as package:
        assert "collection.anki2" in package.namelist()
        package.extract("collection.anki2", tmp_path)
    with sqlite3.connect(tmp_path / "collection.anki2") as db:
        fields = [row[0] for row in db.execute("SELECT flds FROM notes")]
    assert len(fields) == len(deck.cards)
    assert any("notes?note=aws-notes.md&amp;anchor=15" in f for f in fields)
    write_csv(deck.cards, tmp_path / "deck.csv", app_url="http://study.local:8501")
    rows = list(csv.DictReader(open(tmp_path / "deck.csv", encoding="utf-8")))
    assert len(rows) == len(deck.cards)
    assert rows[0]["link"].startswith("http://study.local:8501/notes?note=aws-notes.md")


def test_study_cards_json_prints_one_card_per_line(notes):
    result = run_cli("-m", "study", "cards", "--json", "--notes", str(notes))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) >= 30
    assert {"id", "source", "anchor", "heading", "prompt", "answer", "quote", "kind"} <= set(lines[0])


def test_study_quiz_and_coverage_in_the_terminal(notes, tmp_path):
    env = {"NOTES_DIR": str(notes), "APP_DB": str(tmp_path / "q.sqlite3")}
    first = json.loads(run_cli("-m", "study", "cards", "--json", env=env).stdout.splitlines()[0])
    result = run_cli("-m", "study", "quiz", "--limit", "2", env=env, input=f"{first['answer']}\n\n\n3\n")
    assert result.returncode == 0, result.stderr
    assert "Right." in result.stdout and "2 reviewed." in result.stdout
    coverage = run_cli("-m", "study", "coverage", "--json", env=env)
    rows = [json.loads(line) for line in coverage.stdout.splitlines()]
    assert sum(r["reviews"] for r in rows) == 2
    assert any(r["retrievability"] is None for r in rows)


def test_study_commands_explain_bad_input_in_one_line(tmp_path):
    missing = run_cli("-m", "study", "cards", "--notes", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: The notes folder")
    assert "Traceback" not in missing.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# A\n\nAWS Lambda runs code for up to 900 seconds per call.\n")
    (tmp_path / "bad.db").write_text("not a database at all " * 100)
    bad_db = run_cli("-m", "study", "quiz", "--notes", str(tmp_path / "notes"), "--db", str(tmp_path / "bad.db"))
    assert bad_db.returncode == 2 and "is not a SQLite database" in bad_db.stderr and "Traceback" not in bad_db.stderr
    no_target = run_cli("-m", "study", "export", "--notes", str(tmp_path / "notes"), "--db", str(tmp_path / "x.db"))
    assert no_target.returncode == 2 and "--apkg FILE" in no_target.stderr


def _lambda_limits():
    from notes.parse import parse_note

    return next(s for s in parse_note(SEED_NOTE.read_text(), "aws-notes.md").content_sections if s.anchor == "15")


def test_llm_questions_are_kept_only_when_their_quote_is_in_the_notes_and_holds_the_answer():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from study.freeform import write_questions

    reply = "\n".join(json.dumps(q) for q in [
        {"question": "How long can a Lambda function run at most?", "answer": "900 seconds",
         "quote": "Maximum execution time: 900 seconds (15 minutes)"},
        {"question": "How much memory can a Lambda function have?", "answer": "20 GB",  # not what the quote says
         "quote": "Memory allocation: 128 MB to 10GB (in 1 MB increments)"},
        {"question": "What is the largest deployment?", "answer": "250 MB",
         "quote": "Deployments may reach 250 MB"},  # a quote the notes do not have
    ]) + "\nnot json at all"
    cards = write_questions(FakeListChatModel(responses=[reply]), _lambda_limits())
    assert [(c.prompt, c.answer, c.kind, c.anchor) for c in cards] == [
        ("How long can a Lambda function run at most?", "900 seconds", "question", "15")]


def test_free_form_answers_are_judged_by_the_model_and_fall_back_to_matching(tmp_path):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from study.freeform import grade_card, parse_questions

    card = parse_questions(json.dumps({"question": "How long can a Lambda function run at most?",
                                       "answer": "900 seconds", "quote": "Maximum execution time: 900 seconds"}),
                           _lambda_limits())[0]
    assert grade_card(card, "a quarter of an hour", chat=FakeListChatModel(responses=["RIGHT"])).verdict == "right"
    assert grade_card(card, "ten minutes", chat=FakeListChatModel(responses=["WRONG"])).suggested == "again"
    assert grade_card(card, "a quarter of an hour", chat=FakeListChatModel(responses=["banana"])).verdict == "wrong"


def test_llm_questions_join_the_deck_once_per_version_of_a_section(tmp_path):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    notes = tmp_path / "notes"
    notes.mkdir()
    section = _lambda_limits()
    (notes / "aws-notes.md").write_text(f'<a name="15"></a>\n## Lambda Limits\n\n{section.text}')
    question = {"question": "How many concurrent executions does Lambda allow by default?", "answer": "1000",
                "quote": "Concurrency executions: 1000 (can be increased)"}
    settings = make_settings(notes, tmp_path / ".chroma", app_db=tmp_path / "app.sqlite3")
    first = open_deck(settings, chat=FakeListChatModel(responses=[json.dumps(question)]))
    assert [c.answer for c in first.cards if c.kind == "question"] == ["1000"] and not first.problems
    # The section is unchanged: the model is not asked again (this one would give nothing usable).
    again = open_deck(settings, chat=FakeListChatModel(responses=["nothing"]))
    assert [c.answer for c in again.cards if c.kind == "question"] == ["1000"] and again.synced.retired == 0
    without = open_deck(settings)  # a session without the model keeps the questions already written
    assert [c.answer for c in without.cards if c.kind == "question"] == ["1000"] and without.synced.retired == 0
