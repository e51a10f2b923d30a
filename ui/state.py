"""Streamlit glue shared by the pages: settings, the cached service, first-run build, search scope.

The model and the index are loaded once per process (`st.cache_resource`), keyed on the settings
that decide what gets loaded, so two configurations (two tests, two folders) never share an object.
Chat history lives in `st.session_state` only: each browser session has its own.

On a first start (no index yet) the index is built in a thread of its own (ui/reindex.py), model load
included, so the page and its chat box appear at once; a question asked meanwhile waits for the build.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import streamlit as st

from qa.errors import IndexMissing, NotesQAError
from qa.service import NotesQA
from qa.settings import Settings, load_settings

_LOG = logging.getLogger("notesqa.app")
REPO = Path(__file__).resolve().parent.parent
SETTINGS_KEY = "notesqa_settings"
SERVICE_KEY = "notesqa_service"
ERROR_KEY = "notesqa_error"
SCOPE_NOTE_KEY = "scope_note"
SCOPE_SECTION_KEY = "scope_section"
SCOPE_TAGS_KEY = "scope_tags"
INDEX_STATE_KEY = "notesqa_index_state"
RECORDS_ERROR_KEY = "notesqa_records_error"
BUILD_KEY = "notesqa_first_build"
STAMP_CHECK_S = 3.0  # how often the notes folder is looked at for changes
ALL_NOTES = "All notes"
WHOLE_NOTE = "Whole note"


def unexpected(exc: Exception, doing: str) -> str:
    """One sentence for an error the backend did not foresee (the details go to the server log)."""
    detail = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{doing} failed unexpectedly ({type(exc).__name__}{': ' + detail if detail else ''}); see the server log."


def current_settings() -> Settings:
    """Settings from the environment and `.env` (read on every run: cheap, and follows edits)."""
    return load_settings()


def settings_or_error() -> Settings | None:
    """The settings, or None after showing what is wrong with them (a bad CHROMA_PORT, say)."""
    try:
        settings = current_settings()
        st.session_state[SETTINGS_KEY] = settings
        return settings
    except Exception as exc:  # pydantic's ValidationError lists every bad variable
        first = str(exc).splitlines()
        st.error(f"The settings are invalid: {' '.join(first[:3])[:300]}. Fix the environment or .env.",
                 icon=":material/error:")
        st.session_state[SERVICE_KEY], st.session_state[ERROR_KEY] = None, "invalid settings"
        st.session_state[SETTINGS_KEY] = None
        return None


def settings_key(settings: Settings) -> tuple:
    """What decides which model and index get loaded."""
    where = ((settings.chroma_host, settings.chroma_port, settings.chroma_ssl, settings.chroma_headers)
             if settings.uses_server else (str(Path(settings.chroma_dir).resolve()),))
    llm = (settings.llm_provider, settings.llm_model, settings.llm_base_url, settings.llm_api_key,
           settings.llm_timeout_s)
    return (str(Path(settings.notes_dir).resolve()), *where, settings.collection, settings.embed_model,
            settings.embed_batch_size, *llm)


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedding_model(name: str, batch_size: int, cache_dir: str):
    from qa.embeddings import load_embedding_model

    return load_embedding_model(name, batch_size=batch_size, cache_dir=Path(cache_dir))


@st.cache_resource(show_spinner="Opening the index…")
def _open_service(key: tuple, _settings: Settings) -> NotesQA:
    """The service for one configuration; failures are not cached, so the next run tries again."""
    model = embedding_model(_settings.embed_model, _settings.embed_batch_size, str(_settings.model_cache_dir))
    qa = NotesQA.load(_settings, model=model, build_if_missing=False)
    try:  # the first question pays for torch's first call and the keyword index; pay it here instead
        qa.ask("warm up the model")
    except NotesQAError:
        pass
    return qa


def build_index(settings: Settings, model, *, rebuild: bool = False, container=None):
    """Run ingest in its own thread (ui/reindex.py, so a rerun never aborts it) with a progress bar in
    `container` (the page by default); returns the report, or raises the ingest's error."""
    from ui import reindex

    job = reindex.start_ingest(settings_key(settings), settings, model, rebuild=rebuild)
    return reindex.wait_for_ingest(job, container or st)


_opened: set[tuple] = set()  # configurations whose service this process opened (a deleted index is not new)


def _no_index_yet(settings: Settings) -> bool:
    """A local index folder that was never built (checked before the model loads: a first start need not
    wait for the model to find out). An index deleted under a running service is not one: the service
    says so, with the rebuild to run."""
    return (not settings.uses_server and settings_key(settings) not in _opened
            and not (Path(settings.chroma_dir) / "chroma.sqlite3").exists())


def _start_first_build(settings: Settings):
    """The first build of this configuration's index, in its own thread (model load included)."""
    from ui import reindex

    if not settings.uses_server and not Path(settings.notes_dir).is_dir():
        raise NotesQAError(f"There is no index yet and the notes folder {settings.notes_dir} does not exist: "
                           f"create it or set NOTES_DIR to your notes folder.")
    job = reindex.start_ingest(settings_key(settings), settings, load_model=lambda: embedding_model(
        settings.embed_model, settings.embed_batch_size, str(settings.model_cache_dir)))
    st.session_state[BUILD_KEY] = job
    return job


def building():
    """The first build this session waits for (a ui.reindex.IngestJob), or None."""
    return st.session_state.get(BUILD_KEY)


def _load(settings: Settings) -> NotesQA | None:
    """The service, or None while the first build of the index runs (`building()` is that job)."""
    from ui import reindex

    key = settings_key(settings)
    job = st.session_state.get(BUILD_KEY)
    if job is not None:
        if not job.done.is_set():
            return None
        del st.session_state[BUILD_KEY]
        st.session_state["notesqa_built"] = job.outcome().summary  # or the build's error, raised
    elif _no_index_yet(settings) and reindex.running_ingest(key) is not None:
        st.session_state[BUILD_KEY] = reindex.running_ingest(key)  # another session started it
        return None
    if _no_index_yet(settings):
        _start_first_build(settings)
        return None
    try:
        qa = _open_service(key, settings)
    except IndexMissing:
        _start_first_build(settings)
        return None
    _opened.add(key)
    return qa


def open_service(settings: Settings) -> NotesQA | None:
    """Load the service (on a first run: start building the index and return None, see `building()`); on
    failure keep the one-sentence reason (`load_error()`) and return None.

    Called once per run by app.py; pages then read the result with `service()`.
    """
    try:
        qa = _load(settings)
    except NotesQAError as exc:
        st.session_state[SERVICE_KEY], st.session_state[ERROR_KEY] = None, str(exc)
        return None
    except Exception as exc:  # the page boundary: a message, never a stack trace in the browser
        _LOG.exception("loading the index failed")
        st.session_state[SERVICE_KEY], st.session_state[ERROR_KEY] = None, unexpected(exc, "Opening the index")
        return None
    st.session_state[SERVICE_KEY], st.session_state[ERROR_KEY] = qa, None
    built = st.session_state.pop("notesqa_built", None)
    if built:
        st.toast(f"Index built: {built}", icon=":material/check_circle:")
    return qa


def settings() -> Settings | None:
    """The settings app.py read in this run (None when they are invalid)."""
    return st.session_state.get(SETTINGS_KEY)


def service() -> NotesQA | None:
    """The service app.py loaded in this run (None when it could not be loaded)."""
    return st.session_state.get(SERVICE_KEY)


def load_error() -> str | None:
    return st.session_state.get(ERROR_KEY)


def search_scope() -> tuple[str | None, str | None]:
    """(source, under) for `NotesQA.ask`, from the sidebar's filter."""
    note = st.session_state.get(SCOPE_NOTE_KEY)
    source = None if note in (None, ALL_NOTES) else note
    section = st.session_state.get(SCOPE_SECTION_KEY)
    under = section[0] if source and isinstance(section, tuple) and section[0] else None
    return source, under


@st.cache_data(ttl=STAMP_CHECK_S, show_spinner=False)
def _notes_stamp(notes_dir: str) -> str:
    from ingest.index import notes_stamp

    return notes_stamp(Path(notes_dir))


def notes_changed(settings: Settings) -> bool:
    """Whether notes changed on disk since the index this run showed was built (file sizes and times,
    looked at no more than every few seconds)."""
    index_state = st.session_state.get(INDEX_STATE_KEY)
    if index_state is None or not index_state.notes_stamp:
        return False
    return _notes_stamp(str(settings.notes_dir)) != index_state.notes_stamp


class Watcher:
    """The background re-indexer of one configuration (`AUTO_REINDEX`): its thread and last outcome."""

    def __init__(self, settings: Settings, model) -> None:
        from ingest.watch import watch_notes

        self.stop = threading.Event()
        self.error: str | None = None
        self.last: str | None = None

        def synced(report) -> None:
            self.error, self.last = None, report.summary

        def failed(message: str) -> None:
            self.error = message

        self.thread = threading.Thread(target=watch_notes, args=(settings, model), daemon=True,
                                       name="notesqa-watch",
                                       kwargs={"stop": self.stop, "on_synced": synced, "on_error": failed})
        self.thread.start()


@st.cache_resource(show_spinner=False)
def _watcher(key: tuple, _settings: Settings, _model) -> Watcher:
    return Watcher(_settings, _model)


def start_watcher(settings: Settings, qa: NotesQA) -> Watcher | None:
    """The running re-indexer when `AUTO_REINDEX` is on (one per configuration per process)."""
    if not settings.auto_reindex or qa is None:
        return None
    return _watcher(settings_key(settings), settings, qa.model)


@st.cache_resource(show_spinner=False)
def _records(path: str):
    from qa.records import Records

    return Records(Path(path))


def records(settings: Settings):
    """The conversations and feedback store of this configuration (None when it cannot be opened: then
    `records_error()` says why in one sentence, and the chat still works, it just is not kept)."""
    st.session_state.pop(RECORDS_ERROR_KEY, None)
    try:
        return _records(str(Path(settings.app_db).resolve()))
    except NotesQAError as exc:
        st.session_state[RECORDS_ERROR_KEY] = str(exc)
    except Exception as exc:  # noqa: BLE001 - the page boundary: a sentence, the details in the server log
        _LOG.exception("cannot open %s", settings.app_db)
        st.session_state[RECORDS_ERROR_KEY] = unexpected(exc, f"Opening {settings.app_db} (APP_DB)")
    return None


def records_error() -> str | None:
    """Why the conversations and feedback store could not be opened in this run (None: it was)."""
    return st.session_state.get(RECORDS_ERROR_KEY)


def kept(action, *args, **kwargs):
    """Run a store call; when the store fails, show its one sentence and carry on (None): answers matter
    more than keeping them."""
    try:
        return action(*args, **kwargs)
    except NotesQAError as exc:
        st.warning(str(exc), icon=":material/save:")
    except Exception as exc:  # noqa: BLE001 - same boundary as above
        _LOG.exception("the conversations store failed")
        st.warning(unexpected(exc, "Keeping the conversation"), icon=":material/save:")
    return None


def search_tags() -> tuple[str, ...]:
    """The front-matter tags the sidebar limits questions to (none: every note)."""
    return tuple(st.session_state.get(SCOPE_TAGS_KEY) or ())


@st.cache_data(show_spinner=False, max_entries=16)
def _examples(notes_dir: str, stamp: str, max_bytes: int) -> list[str]:
    from ui.examples import notes_examples

    return notes_examples(Path(notes_dir), max_bytes=max_bytes)


def example_questions(settings: Settings) -> list[str]:
    """Questions about the user's own headings (worked out again only when the notes change)."""
    return _examples(str(settings.notes_dir), _notes_stamp(str(settings.notes_dir)), settings.max_file_bytes)


def other_notes_folder(settings: Settings) -> str | None:
    """One sentence when the index this run showed holds another notes folder than `NOTES_DIR` (an index
    belongs to one folder: answering from it would answer from the other notes); None when it does not."""
    index_state = st.session_state.get(INDEX_STATE_KEY)
    built = index_state.notes_dir if index_state is not None else ""
    if not built or Path(built).resolve() == Path(settings.notes_dir).resolve():
        return None
    return (f"This index holds the notes of {built}, not those of your notes folder {settings.notes_dir}: "
            f"re-index to build it from {settings.notes_dir} (questions wait until then).")
