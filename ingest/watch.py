"""Re-index the notes folder whenever a note changes (the app's optional `AUTO_REINDEX`), with watchfiles."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ingest.index import IngestReport, NOTE_SUFFIXES, notes_stamp, sync_index
from qa.embeddings import EmbeddingModel
from qa.errors import NotesQAError
from qa.settings import Settings
from qa.store import open_index

DEFAULT_DEBOUNCE_MS = 1000  # edits saved within a second of each other are one re-index
_LOG = logging.getLogger("notesqa.watch")


def is_note(path: str) -> bool:
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(NOTE_SUFFIXES)


def _index_is_stale(settings: Settings, model: EmbeddingModel) -> bool:
    try:
        recorded = open_index(settings, model=model.name).read_state().notes_stamp
    except NotesQAError:
        return True
    return recorded != notes_stamp(settings.notes_dir)


def watch_notes(settings: Settings, model: EmbeddingModel, *, stop: threading.Event,
                on_synced: Callable[[IngestReport], None] | None = None,
                on_error: Callable[[str], None] | None = None, debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> None:
    """Block until `stop` is set, re-indexing after each burst of changes to notes (and once at the
    start if the notes changed while nobody watched). Failures are reported, never raised: the
    previous index keeps answering."""
    from watchfiles import watch

    def sync() -> None:
        try:
            report = sync_index(settings, model, progress=False)
        except NotesQAError as exc:
            (on_error or _LOG.warning)(str(exc))
        except Exception as exc:  # noqa: BLE001 - a watcher thread must outlive one bad run
            _LOG.exception("re-indexing failed")
            (on_error or _LOG.warning)(f"Re-indexing failed unexpectedly ({type(exc).__name__}); see the log.")
        else:
            if on_synced:
                on_synced(report)

    if _index_is_stale(settings, model):
        sync()
    for _changes in watch(settings.notes_dir, watch_filter=lambda _change, path: is_note(path), stop_event=stop,
                          debounce=debounce_ms, raise_interrupt=False):
        sync()
