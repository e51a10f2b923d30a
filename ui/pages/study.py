"""Study: cards made from your notes, asked one at a time and scheduled with FSRS; what was studied; export.

Works without the index: the cards come from the notes folder (ui/study.py opens them once per notes stamp).
"""

import streamlit as st

from qa.errors import NotesQAError
from ui import state, study
from ui.coverage import show_coverage

st.title("Study")
settings = state.settings()
opened = study.deck_or_error(settings) if settings is not None else None
if opened is None:
    st.stop()
deck = opened.deck
study.show_sync(opened)
scope = study.choose_scope(deck)
try:
    queue = study.queue_for(deck, scope, settings)
    study.show_counts(queue)
    quiz, coverage, export = st.tabs(study.VIEWS, key=study.VIEW_KEY, on_change="rerun")
    if quiz.open:
        with quiz:
            study.show_quiz(deck, scope, queue, settings=settings)
    if coverage.open:
        with coverage:
            show_coverage(deck, scope)
    if export.open:
        with export:
            study.show_export(deck, scope, settings)
except NotesQAError as exc:  # APP_DB became unusable after the deck was opened
    st.error(str(exc), icon=":material/error:")
