"""The Study page's session: the deck of the notes folder, the scope studied, the card on screen, checking a
typed answer and rating it.

The deck (study/deck.py) is opened once per notes folder, `APP_DB` and notes stamp, so an edit of the notes
re-syncs the cards (history kept, gone passages retired) on the next run. It is read from the notes folder,
not from the index: the page works while the index is missing or being built.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import streamlit as st

from ingest.index import notes_stamp
from qa.errors import NotesQAError
from qa.settings import Settings
from study.cards import BLANK, Card
from study.deck import Deck, Queue, Scope, add_llm_questions, open_deck, study_queue, wait_text
from study.freeform import grade_card
from study.grade import Grade
from study.store import RATINGS, CardGone, StudyCard, StudyStore
from ui import state
from ui.answers import quote_html
from ui.html import html_block
from ui.links import link_params, note_url
from ui.markdown import escape_markdown
from ui.notes import note_label

_LOG = logging.getLogger("notesqa.app")
DEFAULT_EXTRA_NEW = 10  # new cards "Study more new cards" adds to today's limit
DECK_CACHE_ENTRIES = 8
NOTE_KEY, SECTION_KEY, TAGS_KEY = "study_note", "study_section", "study_tags"
CURRENT_KEY = "study_current"  # the id of the card on screen, kept until it is rated
GRADE_KEY = "study_grade"  # (card id, Grade) once its answer was checked
TURN_KEY = "study_turn"  # cards rated in this session: names the answer box, so each card starts empty
NOTICE_KEY = "study_notice"  # (kind, sentence) the last rating left for the next run
EXTRA_NEW_KEY = "study_extra_new"
VIEW_KEY = "study_view"
VIEWS = ("Quiz", "Coverage", "Export")
RATING_LABELS = {"again": "Again", "hard": "Hard", "good": "Good", "easy": "Easy"}
ALERTS = {"right": "success", "close": "warning", "wrong": "error", "blank": "info"}  # st.<alert> per verdict
ALERT_ICONS = {"right": ":material/check_circle:", "close": ":material/adjust:", "wrong": ":material/cancel:",
               "blank": ":material/visibility:"}
PROMPT_STYLE = "font-size: 1.3rem; line-height: 1.7; margin: 0.2rem 0 0.6rem 0"
BLANK_STYLE = ("display: inline-block; min-width: 4.5em; border-bottom: 2px solid currentColor; "
               "background-color: rgba(28, 131, 225, 0.12); border-radius: 0.2rem 0.2rem 0 0")
ANSWER_STYLE = ("background-color: rgba(33, 195, 84, 0.22); border-bottom: 2px solid rgba(33, 195, 84, 0.9); "
                "font-weight: 600; padding: 0 0.25em; border-radius: 0.2rem")


@dataclass
class OpenedDeck:
    """A deck as the page opened it: the notes stamp it was synced at, and when."""

    deck: Deck
    stamp: str
    synced_at: float

    @property
    def changed(self) -> bool:
        report = self.deck.synced
        return bool(report.added or report.moved or report.retired or report.revived)


@st.cache_resource(show_spinner="Making cards from your notes…", max_entries=DECK_CACHE_ENTRIES)
def _open_deck(notes_dir: str, app_db: str, stamp: str, max_bytes: int, _settings: Settings) -> OpenedDeck:
    return OpenedDeck(open_deck(_settings, notes_dir=Path(notes_dir)), stamp, time.time())


def open_study_deck(settings: Settings) -> OpenedDeck:
    """The deck of `NOTES_DIR` synced into `APP_DB`, opened again (and synced) whenever the notes change on
    disk; raises `NotesQAError` (one sentence) when the notes or `APP_DB` cannot be used."""
    notes_dir = Path(settings.notes_dir)
    return _open_deck(str(notes_dir.resolve()), str(Path(settings.app_db).resolve()), notes_stamp(notes_dir),
                      settings.max_file_bytes, settings)


def deck_or_error(settings: Settings) -> OpenedDeck | None:
    """`open_study_deck`, or None after showing why it cannot be opened in one sentence."""
    try:
        return open_study_deck(settings)
    except NotesQAError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - the page boundary: a sentence, the details in the server log
        _LOG.exception("opening the study deck failed")
        st.error(state.unexpected(exc, "Opening the study cards"), icon=":material/error:")
    return None


def sync_text(opened: OpenedDeck) -> str | None:
    """'Cards updated from your notes at 18:02: 2 new, 104 kept, 3 retired (…)', or None when nothing changed."""
    if not opened.changed:
        return None
    return f"Cards updated from your notes at {datetime.fromtimestamp(opened.synced_at):%H:%M}: " \
           f"{opened.deck.synced.summary()}."


def show_sync(opened: OpenedDeck) -> None:
    """What the last sync with the notes changed (when it changed something), and any problem it met."""
    synced = sync_text(opened)
    if synced:
        st.caption(f":material/sync: {escape_markdown(synced)}")
    for problem in getattr(opened.deck, "problems", []):
        st.warning(problem, icon=":material/warning:")


def forget_card() -> None:
    """Drop the card on screen and its grade (the scope changed, or it was rated)."""
    st.session_state.pop(CURRENT_KEY, None)
    st.session_state.pop(GRADE_KEY, None)


def note_sections(deck: Deck, source: str) -> list[tuple[str, str, int]]:
    """(anchor, heading, level) of a note's headed sections, in order, for the section chooser."""
    note = next((n for n in deck.corpus.notes if n.source == source), None)
    return [(s.anchor, s.heading, s.level) for s in (note.content_sections if note else []) if s.anchor and s.level > 0]


def deck_tags(deck: Deck) -> list[str]:
    """The front-matter tags of the notes that gave cards."""
    return sorted({t for c in deck.cards for t in c.tags}, key=str.lower)


def _keep_choice(key: str, options: list) -> None:
    """A choice that is no longer offered (the notes changed) goes back to the first option."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def choose_scope(deck: Deck) -> Scope:
    """The scope chooser: all notes or one note, one section and those under it, tags."""
    notes = {n.source: n for n in deck.corpus.notes}
    tags = deck_tags(deck)
    row = st.columns([2, 2, 1.4] if tags else [1, 1], vertical_alignment="bottom")
    options = [state.ALL_NOTES, *notes]
    _keep_choice(NOTE_KEY, options)
    source = row[0].selectbox("Study", options, key=NOTE_KEY, on_change=forget_card,
                              format_func=lambda n: n if n == state.ALL_NOTES else note_label(n, notes[n].meta))
    anchor = None
    if source != state.ALL_NOTES:
        sections = [("", state.WHOLE_NOTE, 0), *note_sections(deck, source)]
        _keep_choice(SECTION_KEY, sections)
        top = min((s[2] for s in sections[1:]), default=1)
        chosen = row[1].selectbox("Section", sections, key=SECTION_KEY, on_change=forget_card,
                                  format_func=lambda s: s[1] if not s[0] else "\u2003" * (s[2] - top) + s[1],
                                  help="Only this section and the sections under it.")
        anchor = chosen[0] or None
    else:
        st.session_state.pop(SECTION_KEY, None)
        row[1].selectbox("Section", [state.WHOLE_NOTE], disabled=True, key="study_section_off",
                         help="Choose a note first.")
    chosen_tags: tuple[str, ...] = ()
    if tags:
        st.session_state[TAGS_KEY] = [t for t in st.session_state.get(TAGS_KEY) or [] if t in tags]
        chosen_tags = tuple(row[2].multiselect("Tags", tags, key=TAGS_KEY, on_change=forget_card,
                                               placeholder="Any tag", help="Only notes with one of these tags."))
    return Scope(None if source == state.ALL_NOTES else source, anchor, chosen_tags)


def scope_label(scope: Scope, deck: Deck) -> str:
    """'all notes', 'aws-notes.md', 'aws-notes.md › Lambda Limits', '… tagged aws, exam'."""
    where = scope.source or "all notes"
    if scope.source and scope.anchor:
        heading = next((h for a, h, _ in note_sections(deck, scope.source) if a == scope.anchor), scope.anchor)
        where += f" › {heading}"
    return where + (f" tagged {', '.join(scope.tags)}" if scope.tags else "")


def widen_scope() -> None:
    """'Study all notes': drop the note, section and tag limits."""
    st.session_state[NOTE_KEY] = state.ALL_NOTES
    st.session_state.pop(SECTION_KEY, None)
    st.session_state[TAGS_KEY] = []
    forget_card()


def more_new_cards() -> None:
    st.session_state[EXTRA_NEW_KEY] = st.session_state.get(EXTRA_NEW_KEY, 0) + DEFAULT_EXTRA_NEW


def queue_for(deck: Deck, scope: Scope, settings: Settings, *, now: float | None = None) -> Queue:
    """Today's queue in the scope: due cards, then new ones up to the daily limit (plus any asked for)."""
    extra = st.session_state.get(EXTRA_NEW_KEY, 0)
    return study_queue(deck.store, scope, now=now, new_per_day=settings.study_new_per_day + extra)


def current_card(store: StudyStore, scope: Scope, queue: Queue) -> StudyCard | None:
    """The card on screen: the one already shown (until it is rated, even if its passage has just left the
    notes), else the first of the queue."""
    pinned = st.session_state.get(CURRENT_KEY)
    shown = store.card(pinned) if pinned else None
    if shown is not None and scope.covers(shown.card):
        return shown
    forget_card()
    if queue.cards:
        st.session_state[CURRENT_KEY] = queue.cards[0].card.id
        return queue.cards[0]
    return None


def answer_key() -> str:
    return f"study_answer_{st.session_state.get(TURN_KEY, 0)}"


def check_answer(card: Card, chat=None) -> None:
    """Grade what was typed for `card` (the Check button); a free-form question by the LLM when there is one."""
    st.session_state[GRADE_KEY] = (card.id, grade_card(card, st.session_state.get(answer_key()), chat=chat))


@st.cache_resource(show_spinner=False)
def _chat_model(provider: str, model: str | None, base_url: str | None, timeout_s: float, _settings: Settings):
    from qa.llm import make_chat_model

    return make_chat_model(_settings)


def study_chat(settings: Settings):
    """The configured LLM (`LLM_PROVIDER`), or None: free-form questions and their judge need one."""
    if (settings.llm_provider or "none").lower() == "none":
        return None
    try:
        return _chat_model(settings.llm_provider, settings.llm_model, settings.llm_base_url, settings.llm_timeout_s,
                           settings)
    except NotesQAError:
        return None


def write_llm_questions(deck: Deck, chat, settings: Settings) -> tuple[str, str]:
    """Ask the LLM for free-form questions on every section not asked yet, sync them in, and say what came of
    it in one sentence, (kind, text) (an unreachable model leaves the cloze cards as they are)."""
    cards = list(deck.cards)
    before = sum(c.kind == "question" for c in cards)
    problems = add_llm_questions(cards, deck.corpus, deck.store, chat, timeout_s=settings.llm_timeout_s)
    deck.store.sync(cards)
    _open_deck.clear()
    added = sum(c.kind == "question" for c in cards) - before
    if problems:
        return "warning", problems[0]
    return "done", f"{added} question{'s' * (added != 1)} written by the language model."


def show_llm_questions(deck: Deck, settings: Settings, chat) -> None:
    """With an LLM configured: a button that adds its free-form questions (kept when their quote holds the
    answer) to the deck."""
    if chat is None:
        return
    asked = sum(c.kind == "question" for c in deck.cards)
    if st.button(f"Write questions with the language model ({asked} so far)", icon=":material/auto_awesome:",
                 key="study_llm_questions"):
        with st.spinner("The language model is writing questions, section by section…"):
            st.session_state[NOTICE_KEY] = write_llm_questions(deck, chat, settings)
        st.rerun()


def shown_grade(card: Card) -> Grade | None:
    graded = st.session_state.get(GRADE_KEY)
    return graded[1] if graded and graded[0] == card.id else None


def rate_card(store: StudyStore, card_id: str, rating: str, grade: Grade) -> None:
    """Record the rating with the verdict and what was typed, then go on to the next card; a card whose
    passage left the notes, or a store that fails, leaves one sentence for the next run instead."""
    try:
        result = store.review(card_id, rating, verdict=grade.verdict, typed=grade.typed)
    except CardGone as exc:
        notice = ("warning", str(exc))
    except NotesQAError as exc:
        notice = ("error", str(exc))
    except Exception as exc:  # noqa: BLE001 - the page boundary
        _LOG.exception("recording a review failed")
        notice = ("error", state.unexpected(exc, "Recording the review"))
    else:
        notice = ("done", f"{RATING_LABELS[rating]}: this card comes back in {wait_text(result.interval_s)}.")
    st.session_state[NOTICE_KEY] = notice
    st.session_state[TURN_KEY] = st.session_state.get(TURN_KEY, 0) + 1
    forget_card()


def rating_intervals(store: StudyStore, card: StudyCard, *, now: float | None = None) -> dict[str, float]:
    """How long until the card comes back after each rating (FSRS, without recording anything)."""
    if card.fsrs is None:
        return {}
    now = time.time() if now is None else now
    at = datetime.fromtimestamp(now, tz=timezone.utc)
    return {name: store.scheduler.review_card(card.fsrs, rating, review_datetime=at)[0].due.timestamp() - now
            for name, rating in RATINGS.items()}


def next_due(store: StudyStore, scope: Scope, *, now: float | None = None) -> float | None:
    """When the next studied card in the scope is due (None: none has been studied)."""
    now = time.time() if now is None else now
    return min((c.due for c in store.cards() if not c.is_new and scope.covers(c.card) and c.due > now), default=None)


def prompt_html(prompt: str, answer: str | None = None) -> str:
    """The card's prompt as safe HTML, its text exactly as written (no Markdown read: a note's `*`, `_` or
    `$` stays a character); the blank a visible box or, once checked, the answer in it. A question without a
    blank (a free-form card) gets its answer under it once checked."""
    shown = f'<span style="{ANSWER_STYLE}">{html.escape(answer)}</span>' if answer is not None else ""
    if BLANK not in prompt:
        return html_block(f'<p style="{PROMPT_STYLE}">{html.escape(prompt)}</p>'
                          + (f'<p style="{PROMPT_STYLE}">{shown}</p>' if shown else ""))
    before, _, after = prompt.partition(BLANK)
    gap = shown or f'<span style="{BLANK_STYLE}" title="the missing words">{"&emsp;" * 4}</span>'
    return html_block(f'<p style="{PROMPT_STYLE}">{html.escape(before)}{gap}{html.escape(after)}</p>')


def show_counts(queue: Queue) -> None:
    row = st.container(horizontal=True, gap="large")
    row.metric("Due today", queue.due, help="Cards studied before whose time has come, most overdue first.")
    row.metric("New", queue.new, help="Cards never studied, in note order, up to the daily limit "
                                      "(STUDY_NEW_PER_DAY).")
    row.metric("Later", queue.later, help="Cards studied and not due yet.")


def show_notice() -> None:
    kind, text = st.session_state.pop(NOTICE_KEY, (None, None))
    if kind == "warning":
        st.warning(text, icon=":material/warning:")
    elif kind == "error":
        st.error(text, icon=":material/error:")
    elif kind == "done":
        st.caption(f":material/event_repeat: {escape_markdown(text)}")


def show_passage(card: Card) -> None:
    """The passage the card comes from, linked like a chat citation: a new tab at that section with the
    passage highlighted, or the same tab."""
    st.markdown(f":material/format_quote: From [{escape_markdown(card.heading or card.source)}]"
                f"({note_url(card.source, card.anchor, card.quote)}) · :gray[{escape_markdown(card.source)}]")
    st.markdown(quote_html(card.quote, mark=card.answer), unsafe_allow_html=True)  # sanitised by nh3 (ui/html.py)
    st.page_link("ui/pages/notes.py", label="Open here in Notes", icon=":material/arrow_forward:",
                 query_params=link_params(card.source, card.anchor, card.quote))


def show_ratings(store: StudyStore, shown: StudyCard, grade: Grade) -> None:
    """Again / Hard / Good / Easy, the one the grade suggests first; when each brings the card back."""
    intervals = rating_intervals(store, shown)
    st.markdown("**How well did you know it?**")
    row = st.container(horizontal=True)
    for name, label in RATING_LABELS.items():
        row.button(label, key=f"study_rate_{name}", type="primary" if name == grade.suggested else "secondary",
                   on_click=rate_card, args=(store, shown.card.id, name, grade),
                   help=f"Comes back in {wait_text(intervals[name])}" if name in intervals else None)
    if intervals:
        st.caption(" · ".join(f"{RATING_LABELS[n]}: {wait_text(s)}" for n, s in intervals.items()))


def show_card(store: StudyStore, shown: StudyCard, *, chat=None) -> None:
    """One card: where it is from, the prompt, the answer box; once checked, the grade, the answer in the
    prompt, the passage and the ratings."""
    card = shown.card
    grade = shown_grade(card)
    with st.container(border=True):
        status = "new card" if shown.is_new else f"studied {shown.reviews} time{'s' * (shown.reviews != 1)}"
        st.caption(f":material/account_tree: {escape_markdown(card.heading or card.source)} · {status}")
        st.markdown(prompt_html(card.prompt, card.answer if grade else None), unsafe_allow_html=True)
        with st.form("study_check", border=False, enter_to_submit=True):
            st.text_input("Your answer", key=answer_key(),
                          placeholder=f"{'The missing words' if BLANK in card.prompt else 'Your answer'} "
                                      "(leave empty to see the answer)")
            st.form_submit_button("Check", type="secondary" if grade else "primary", icon=":material/done:",
                                  on_click=check_answer, args=(card, chat))
    if grade is None:
        return
    alert = getattr(st, ALERTS.get(grade.verdict, "info"))
    alert(escape_markdown(grade.message), icon=ALERT_ICONS.get(grade.verdict, ":material/info:"))
    show_passage(card)
    show_ratings(store, shown, grade)


def show_nothing_due(deck: Deck, scope: Scope, queue: Queue) -> None:
    """No card to ask: say why, when the next one is due, and offer new cards or a wider scope."""
    in_scope = [c for c in deck.store.cards() if scope.covers(c.card)]
    where = escape_markdown(scope_label(scope, deck))
    if not in_scope:
        st.info(f"There are no cards in {where}: its sections give no figure, name, defined term or command to "
                "ask about.", icon=":material/info:")
    else:
        st.success(f"Nothing left to study in {where} for now.", icon=":material/task_alt:")
        due = next_due(deck.store, scope)
        if due is not None:
            st.caption(f":material/schedule: The next card is due {_when(due)} "
                       f"(in {wait_text(due - time.time())}).")
    new_left = sum(1 for c in in_scope if c.is_new) - queue.new
    row = st.container(horizontal=True)
    if new_left > 0:
        row.button(f"Study {min(new_left, DEFAULT_EXTRA_NEW)} more new cards", icon=":material/add:",
                   on_click=more_new_cards, help=f"{new_left} new cards are left beyond today's limit.")
    if scope != Scope():
        row.button("Study all notes", icon=":material/travel_explore:", on_click=widen_scope)


def _when(ts: float) -> str:
    moment = datetime.fromtimestamp(ts)
    return f"at {moment:%H:%M}" if moment.date() == datetime.now().date() else f"on {moment:%Y-%m-%d} at {moment:%H:%M}"


def show_quiz(deck: Deck, scope: Scope, queue: Queue, *, settings: Settings | None = None) -> None:
    """The Quiz view: the last rating's outcome, then the card on screen or what to do when none is due."""
    chat = study_chat(settings) if settings is not None else None
    show_notice()
    shown = current_card(deck.store, scope, queue)
    if shown is None:
        show_nothing_due(deck, scope, queue)
    else:
        show_card(deck.store, shown, chat=chat)
    show_llm_questions(deck, settings, chat)


def show_export(deck: Deck, scope: Scope, settings: Settings) -> None:
    """The Export view: the cards in the scope as an Anki package and as CSV (made when clicked), each card
    linking back to its section at `APP_URL`."""
    from ui.export import export_deck

    cards = [c for c in deck.cards if scope.covers(c)]
    where = escape_markdown(scope_label(scope, deck))
    if not cards:
        st.info(f"There are no cards in {where} to export.", icon=":material/info:")
        return
    st.markdown(f"{len(cards)} card{'s' * (len(cards) != 1)} in {where}. Each links back to its section "
                f"in this app at `{settings.app_url}` (set `APP_URL` to where you reach it); re-importing the "
                "Anki package updates the same notes.")
    name = "notes-qa-" + "".join(ch if ch.isalnum() else "-" for ch in (scope.source or "all-notes")).strip("-")
    row = st.container(horizontal=True)
    row.download_button("Anki deck (.apkg)", lambda: export_deck(cards, "apkg", app_url=settings.app_url),
                        file_name=f"{name}.apkg", mime="application/octet-stream", icon=":material/download:",
                        on_click="ignore", key="study_export_apkg")
    row.download_button("CSV", lambda: export_deck(cards, "csv", app_url=settings.app_url),
                        file_name=f"{name}.csv", mime="text/csv", icon=":material/download:", on_click="ignore",
                        key="study_export_csv")
    st.caption("In Anki: File › Import. Reviews made in Anki and here are kept apart.")
