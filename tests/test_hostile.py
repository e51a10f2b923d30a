"""Hostile or unusual notes folders: special files, odd line endings, front matter bombs, unreadable folders.

Each one gets one warning or one sentence, never a hang or a traceback, and the rest of the notes keep
being indexed and answered.
"""

from __future__ import annotations

import os
import threading

from conftest import make_settings

from ingest.index import sync_index
from ui.notes import list_notes, notes_meta


def call_within(seconds: float, fn, *args):
    """`fn(*args)` in a thread; fails instead of hanging the test run when it has not returned in time."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), box.get("value")


def test_a_fifo_named_like_a_note_never_hangs_the_picker_and_ingest_skips_it(tmp_path, model):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "real.md").write_text("---\ntitle: Real note\n---\n# Real\n\nSome text here.\n")
    fifo = notes / "x.md"
    os.mkfifo(fifo)
    hung, metas = call_within(10, notes_meta, notes)
    if hung:  # let the blocked open() return so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not hung, "reading the front matter of a FIFO blocked"
    assert list(metas) == ["real.md"] and metas["real.md"].title == "Real note"
    assert list_notes(notes) == ["real.md"]
    report = sync_index(make_settings(notes, tmp_path / ".chroma"), model, progress=False)
    assert report.files == 1 and report.skipped == ["x.md: skipped: not a regular file"]


def test_a_symlink_out_of_the_folder_leaks_no_title_or_tags_into_the_picker(tmp_path):
    notes, outside = tmp_path / "notes", tmp_path / "private.md"
    notes.mkdir()
    outside.write_text("---\ntitle: Salaries 2025\ntags: [hr-secret]\n---\n# Private\n\nText.\n")
    (notes / "link.md").symlink_to(outside)
    meta = notes_meta(notes)["link.md"]
    assert meta.title == "link" and not meta.tags  # the file name, as for a note without front matter
