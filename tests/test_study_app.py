"""The Study page run in-process with AppTest: the real app.py, the seed notes, real SQLite (APP_DB in the
test's tmp dir) and real FSRS; plus the page's HTML helpers."""

from __future__ import annotations

import csv
import html
import io
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO

APP = REPO / "app.py"
STUDY_PAGE = "ui/pages/study.py"
TIMEOUT = 120


def open_study(monkeypatch, notes_dir: Path, chroma_dir: Path, app_db: Path) -> AppTest:
    """The app on these notes, index and APP_DB, switched to the Study page."""
    monkeypatch.setenv("NOTES_DIR", str(notes_dir))
    monkeypatch.setenv("CHROMA_DIR", str(chroma_dir))
    monkeypatch.setenv("APP_DB", str(app_db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page(STUDY_PAGE).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "app.sqlite3"


@pytest.fixture
def study(monkeypatch, seed_settings, db) -> AppTest:
    at = open_study(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir, db)
    assert not at.error, [e.value for e in at.error]
    return at


def shown_card(at: AppTest, db: Path):
    """The card on screen, read from the store (never hard-coded: the cards come from the notes)."""
    from study.store import StudyStore
    from ui.study import CURRENT_KEY

    return StudyStore(db).card(at.session_state[CURRENT_KEY]).card


def check(at: AppTest, typed: str) -> AppTest:
    next(t for t in at.text_input if t.label == "Your answer").input(typed)
    next(b for b in at.button if b.label == "Check").click().run()
    assert not at.exception, at.exception
    return at


def rate(at: AppTest, rating: str) -> AppTest:
    at.button(key=f"study_rate_{rating}").click().run()
    assert not at.exception, at.exception
    return at


def primary_rating(at: AppTest) -> str:
    return next(b.label for b in at.button if b.key and b.key.startswith("study_rate_") and b.proto.type == "primary")


def prompt_shown(at: AppTest, card) -> bool:
    """Whether the card's prompt is on the page (its text around the blank, HTML-escaped)."""
    from study.cards import BLANK

    pieces = [html.escape(p) for p in card.prompt.split(BLANK)]
    return any(all(p in m.value for p in pieces) and "font-size: 1.3rem" in m.value for m in at.markdown)


def reviews(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT card, rating, verdict, typed FROM study_reviews ORDER BY id").fetchall()


def texts(elements) -> list[str]:
    """The elements' text as a reader sees it (Markdown escapes taken off)."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in elements]


def test_a_right_answer_is_graded_rated_good_kept_in_sqlite_and_the_next_card_follows(study, db):
    card = shown_card(study, db)
    assert prompt_shown(study, card)
    assert [m.value for m in study.metric][:3] == ["0", "20", "0"]  # due, new (the daily limit), later

    check(study, card.answer)

    assert any(s.startswith("Right") for s in texts(study.success)), texts(study.success)
    shown = "\n".join(m.value for m in study.markdown)
    assert f">{html.escape(card.answer)}</span>" in shown  # the answer in the blank
    assert f"notes?note={card.source}&anchor={card.anchor}&quote=" in shown  # the passage links like a citation
    assert "<mark" in shown and "<blockquote>" in shown  # the passage, the answer highlighted in it
    here = study.get("page_link")[0].proto
    assert "Open here in Notes" in here.label and f"anchor={card.anchor}" in here.query_string
    assert primary_rating(study) == "Good"

    rate(study, "good")

    assert reviews(db) == [(card.id, 3, "right", card.answer)]
    following = shown_card(study, db)
    assert following.id != card.id and prompt_shown(study, following)
    assert any("Good: this card comes back in 10 minutes" in c for c in texts(study.caption))
    assert [m.value for m in study.metric][:3] == ["0", "19", "1"]  # a learning step: back later today


def test_a_wrong_answer_says_what_the_notes_say_and_suggests_again(study, db):
    card = shown_card(study, db)
    check(study, "certainly not this")

    assert texts(study.error) == [f"Not quite: the notes say “{card.answer}”."]
    assert primary_rating(study) == "Again"
    rate(study, "again")
    assert reviews(db) == [(card.id, 1, "wrong", "certainly not this")]


def test_an_empty_answer_shows_the_answer(study, db):
    card = shown_card(study, db)
    check(study, "   ")

    assert any("No answer typed: here is the answer" in i for i in texts(study.info))
    assert any(f">{html.escape(card.answer)}</span>" in m.value for m in study.markdown)
    assert primary_rating(study) == "Again"


def test_a_10000_character_answer_is_graded_on_its_first_500_with_a_notice(study, db):
    card = shown_card(study, db)
    check(study, "x" * 10_000)

    assert any("only your first 500 characters were read" in e for e in texts(study.error))
    rate(study, "again")
    assert [(rating, verdict, len(typed)) for _, rating, verdict, typed in reviews(db)] == [(1, "wrong", 500)]
    assert shown_card(study, db).id != card.id


def test_when_nothing_is_left_it_says_when_the_next_card_is_due_and_offers_more_new_cards(
        monkeypatch, seed_settings, db):
    monkeypatch.setenv("STUDY_NEW_PER_DAY", "1")
    at = open_study(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir, db)
    first = shown_card(at, db)
    rate(check(at, first.answer), "good")

    assert any("Nothing left to study in all notes for now" in s for s in texts(at.success))
    assert any(re.search(r"The next card is due at \d\d:\d\d \(in 10 minutes\)", c) for c in texts(at.caption))
    more = next(b for b in at.button if b.label == "Study 10 more new cards")
    more.click().run()
    following = shown_card(at, db)
    assert following.id != first.id and prompt_shown(at, following)
    assert [m.value for m in at.metric][:3] == ["0", "10", "1"]


def delete_section(notes_dir: Path, source: str, anchor: str) -> None:
    """Remove a section (its heading and text) from a note, as an edit in an editor would."""
    from notes.parse import parse_note

    path = notes_dir / source
    text = path.read_text(encoding="utf-8")
    section = next(s for s in parse_note(text, source).sections if s.anchor == anchor)
    lines = text.split("\n")
    del lines[section.start_line - 1:section.end_line]
    path.write_text("\n".join(lines), encoding="utf-8")


def test_a_section_deleted_mid_quiz_gives_one_sentence_and_the_session_goes_on(monkeypatch, seed_settings,
                                                                              corpus_copy, db):
    from study.store import StudyStore

    at = open_study(monkeypatch, corpus_copy, seed_settings.chroma_dir, db)
    card = shown_card(at, db)
    delete_section(corpus_copy, card.source, card.anchor)
    check(at, card.answer)  # the next run re-syncs: the card on screen stays until it is rated
    assert any("retired" in c for c in texts(at.caption)), texts(at.caption)
    assert StudyStore(db).card(card.id).retired is not None

    rate(at, "good")

    assert len(at.main.warning) == 1  # (the sidebar says the index is of another folder: the notes were copied)
    warning = at.main.warning[0].value
    assert "no longer in your notes" in warning and warning.count(". ") == 0 and warning.endswith(".")
    assert reviews(db) == []
    following = shown_card(at, db)
    assert following.id != card.id and StudyStore(db).card(following.id).retired is None
    check(at, following.answer)
    rate(at, "good")
    assert not at.main.warning and reviews(db) == [(following.id, 3, "right", following.answer)]


def test_the_scope_chooser_limits_the_cards_to_one_section_and_its_subsections(study, db, seed_settings):
    from collections import Counter

    from notes.parse import parse_note
    from study.store import StudyStore

    cards = [c.card for c in StudyStore(db).cards()]
    below = Counter(a for c in cards for a in c.anchor_path[1:-1])  # sections that have subsections with cards
    anchor, count = below.most_common(1)[0]
    assert 1 < count < len(cards)
    note = cards[0].source
    sections = parse_note((seed_settings.notes_dir / note).read_text(encoding="utf-8"), note).sections
    heading = next(s.heading for s in sections if s.anchor == anchor)

    study.selectbox(key="study_note").select(note).run()
    picker = study.selectbox(key="study_section")
    picker.select_index([o.strip() for o in picker.options].index(heading)).run()
    assert not study.exception
    assert [m.value for m in study.metric][:3] == ["0", str(min(count, 20)), "0"]

    seen = []
    for _ in range(min(count, 20)):
        card = shown_card(study, db)
        assert anchor in card.anchor_path, (anchor, card.anchor_path)
        seen.append(card.id)
        rate(check(study, ""), "good")
    assert len(set(seen)) == len(seen)
    if count <= 20:
        assert any(f"Nothing left to study in {note} › {heading}" in s for s in texts(study.success))
        assert any("The next card is due" in c for c in texts(study.caption))
        next(b for b in study.button if b.label == "Study all notes").click().run()
        assert study.selectbox(key="study_note").value == "All notes"
        assert anchor not in shown_card(study, db).anchor_path


def test_coverage_shows_the_studied_section_coloured_and_the_rest_grey(study, db):
    from ui.coverage import NEVER_STUDIED

    card = shown_card(study, db)
    rate(check(study, card.answer), "good")
    study.session_state["study_view"] = "Coverage"
    study.run()
    assert not study.exception

    contents = next(m.value for m in study.markdown if "data-anchor=" in m.value)
    rows = dict(re.findall(r'<div data-anchor="([^"]*)" style="[^"]*border-left: 0\.5rem solid ([^;]+);', contents))
    assert rows[card.anchor] != NEVER_STUDIED and rows[card.anchor].startswith("hsla(")
    assert [a for a, colour in rows.items() if colour != NEVER_STUDIED] == [card.anchor]
    assert "recall 100% · " in contents
    assert any("1 of" in c and "sections studied" in c for c in texts(study.caption))
    assert study.get("vega_lite_chart"), "the reviews-per-day chart"


def test_export_offers_the_anki_package_and_csv_of_the_cards_in_scope(monkeypatch, seed_settings, db):
    from study.store import StudyStore
    from ui.export import export_deck

    monkeypatch.setenv("APP_URL", "http://study.example:8600")
    at = open_study(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir, db)
    at.session_state["study_view"] = "Export"
    at.run()

    assert not at.exception
    assert [b.label for b in at.get("download_button")] == ["Anki deck (.apkg)", "CSV"]
    assert any("http://study.example:8600" in m.value for m in at.markdown)
    cards = [c.card for c in StudyStore(db).cards()]
    package = export_deck(cards, "apkg", app_url="http://study.example:8600")
    assert "collection.anki2" in zipfile.ZipFile(io.BytesIO(package)).namelist()
    rows = list(csv.DictReader(io.StringIO(export_deck(cards, "csv", app_url="http://study.example:8600").decode())))
    assert len(rows) == len(cards) and all(r["link"].startswith("http://study.example:8600/notes?note=") for r in rows)


@pytest.mark.parametrize("make_db, message", [
    (lambda path: sqlite3.connect(path).execute("CREATE TABLE invoices (number INTEGER)"), "holds other data"),
    (lambda path: path.mkdir(), "(APP_DB)"),
])
def test_an_unusable_app_db_is_one_sentence_and_the_page_still_renders(monkeypatch, seed_settings, tmp_path,
                                                                       make_db, message):
    bad = tmp_path / "bad.sqlite3"
    make_db(bad)
    at = open_study(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir, bad)

    errors = [e for e in texts(at.error) if "APP_DB" in e]
    assert len(errors) == 1 and message in errors[0], texts(at.error)
    assert [t.value for t in at.title] == ["Study"]


def test_the_study_page_works_without_the_index(monkeypatch, tmp_path, corpus_copy, db):
    from conftest import free_port

    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")  # no index to be had: a Chroma server that is not there
    monkeypatch.setenv("CHROMA_PORT", str(free_port()))
    monkeypatch.setenv("CHROMA_TIMEOUT_S", "1")
    at = open_study(monkeypatch, corpus_copy, tmp_path / ".chroma", db)

    assert any("Cannot reach the Chroma server" in e for e in texts(at.error))
    card = shown_card(at, db)
    assert prompt_shown(at, card)
    rate(check(at, card.answer), "good")
    assert reviews(db) == [(card.id, 3, "right", card.answer)]


def test_a_prompt_is_shown_as_written_with_a_visible_blank():
    from ui.study import prompt_html

    shown = prompt_html("Costs $0.20 per *GB* for __init__ files and ___ here.")
    assert "$0.20 per *GB* for __init__ files and <span" in shown  # no Markdown read, nothing lost
    assert "&emsp;" in shown and "\n" not in shown
    assert "&lt;script&gt;" in prompt_html("A <script>x()</script> ___ tag.", "<b>")
    assert ">&lt;b&gt;</span>" in prompt_html("A <script>x()</script> ___ tag.", "<b>")
    question = prompt_html("How long can a *Lambda* run?", "15 minutes")  # a free-form card: no blank
    assert "How long can a *Lambda* run?</p>" in question and ">15 minutes</span>" in question
    assert "&emsp;" not in prompt_html("How long can a *Lambda* run?")


def test_coverage_html_escapes_headings_and_colours_by_recall():
    from study.coverage import SectionCoverage
    from ui.coverage import NEVER_STUDIED, coverage_html, recall_colour

    rows = [SectionCoverage("a.md", "x", "<script>alert(1)</script> **Limits**", 2, 2, 1, 3, 0.2, 1, 0),
            SectionCoverage("a.md", "y", "Pricing & tiers", 3, 0, 0, 0, None, 0, 0)]
    shown = coverage_html(rows)
    assert "<script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt; **Limits**" in shown
    assert "Pricing &amp; tiers" in shown and "margin: 0 0 0.3rem 1.3em" in shown  # a level deeper, indented
    assert recall_colour(None) == NEVER_STUDIED and recall_colour(0.0).startswith("hsla(0,")
    assert recall_colour(1.0).startswith("hsla(120,")


def test_an_unreachable_llm_leaves_one_sentence_and_the_cloze_cards(monkeypatch, seed_settings, db):
    from bench.processes import free_port

    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    monkeypatch.setenv("LLM_TIMEOUT_S", "3")
    at = open_study(monkeypatch, seed_settings.notes_dir, seed_settings.chroma_dir, db)
    button = next(b for b in at.button if b.key == "study_llm_questions")
    assert "0 so far" in button.label
    button.click().run()
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("No free-form questions this time") and "could not be reached" in warning
    card = shown_card(at, db)
    assert card.kind != "question"
    check(at, card.answer)
    assert any(s.value.startswith("Right") for s in at.success), [s.value for s in at.success]  # graded without the model
