"""Hostile or unusual notes folders: special files, odd line endings, front matter bombs, unreadable folders.

Each one gets one warning or one sentence, never a hang or a traceback, and the rest of the notes keep
being indexed and answered.
"""

from __future__ import annotations

import os
import threading

import pytest
from conftest import make_settings

from ingest.index import UnreadableFolder, sync_index
from qa.store import alive_filter, open_index
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


def test_cr_only_line_endings_are_indexed_answered_and_shown(tmp_path, model):
    from qa.service import NotesQA
    from ui.notes import load_note

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cr.md").write_bytes(b"# CR\r\r## S\r\rText 9.\r")  # the file, byte for byte
    (notes / "mac.md").write_bytes(b"# Glaciers\r\r## Speed\r\rGlaciers in the valley move nine metres a year.\r"
                                   b"The fastest move forty metres a year.\r\r## Ice\r\rIce is frozen water.\r")
    settings = make_settings(notes, tmp_path / ".chroma")
    report = sync_index(settings, model, progress=False)
    assert report.files == 2 and not report.skipped and report.sections == 3  # S, Speed, Ice
    answer = NotesQA.load(settings, model=model, build_if_missing=False).ask("How fast do glaciers in the valley move?")
    assert not answer.abstained and answer.citations[0].url == "mac.md#speed"
    assert "nine metres a year" in answer.citations[0].quote
    shown = load_note(notes, "cr.md")  # the Notes page
    assert [(s.heading, s.anchor, s.text) for s in shown.content_sections] == [("S", "s", "Text 9.")]


def alias_bomb(levels: int) -> str:
    """Front matter of a few hundred bytes whose title expands to 9**levels strings when aliases are followed."""
    names = "abcdefghij"[:levels + 1]
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{b}: &{b} [{','.join(['*' + a] * 9)}]" for a, b in zip(names, names[1:])]
    return "---\n" + "\n".join(lines) + f"\ntitle: *{names[-1]}\ntags: *{names[-1]}\n---\n"


def test_a_yaml_alias_bomb_in_front_matter_is_refused_and_the_note_still_indexed(tmp_path, model):
    import json

    from qa.service import NotesQA

    notes = tmp_path / "notes"
    notes.mkdir()
    bomb = alias_bomb(6)  # 9**6 = 531,441 copies of "lol" when followed: a 3.7 MB title on every chunk
    assert len(bomb) < 400
    (notes / "bomb.md").write_text(bomb + "# Glaciers\n\n## Speed\n\nGlaciers in the valley move nine metres a year.\n")
    (notes / "big.md").write_text("---\ntitle: Big\ntags: [" + ", ".join(f"t{i}" for i in range(20000))
                                  + "]\n---\n# Ice\n\n## Water\n\nIce is frozen water and floats on it.\n")
    settings = make_settings(notes, tmp_path / ".chroma")
    report = sync_index(settings, model, progress=False)
    assert report.files == 2 and report.sections == 2
    assert report.warnings == [
        "big.md:1: the front matter cannot be read (145 KB, over the 32 KB limit); ignored",
        "bomb.md:1: the front matter cannot be read (the alias *a: YAML aliases are not allowed in front matter); "
        "ignored"]
    answer = NotesQA.load(settings, model=model, build_if_missing=False).ask("How fast do glaciers in the valley move?")
    assert answer.citations[0].url == "bomb.md#speed" and answer.citations[0].title == "bomb"
    assert len(json.dumps(answer.to_dict())) < 20_000
    assert sum(p.stat().st_size for p in settings.chroma_dir.rglob("*") if p.is_file()) < 20_000_000


def deny_listing(monkeypatch, folder):
    """As `chmod 000 folder` does for a user who is not root (the tests run as root): listing it fails."""
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.abspath(path) == os.path.abspath(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.mark.parametrize("unreadable", ["notes", "notes/lambda"])
def test_an_unreadable_notes_folder_or_subfolder_is_an_error_that_removes_nothing(
        fresh_index, model, monkeypatch, capsys, unreadable):
    from ingest.__main__ import main
    from qa.service import NotesQA

    sub = fresh_index.notes_dir / "lambda"
    sub.mkdir()
    (sub / "limits.md").write_text("# Limits\n\n## Memory\n\nA Lambda function gets up to 10,240 MB of memory.\n")
    first = sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    before = qa.ask("How much memory can a Lambda function get?")
    folder = fresh_index.notes_dir.parent / unreadable
    deny_listing(monkeypatch, folder)

    with pytest.raises(UnreadableFolder, match="cannot be read \\(Permission denied\\)"):
        sync_index(fresh_index, model, progress=False)
    monkeypatch.setenv("NOTES_DIR", str(fresh_index.notes_dir))
    monkeypatch.setenv("CHROMA_DIR", str(fresh_index.chroma_dir))
    monkeypatch.setattr("qa.embeddings.load_embedding_model", lambda *a, **k: model)
    assert main(["--strict", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: The {'notes folder' if unreadable == 'notes' else 'folder'} {folder} cannot be read "
                   f"(Permission denied): fix its permissions (or move it out of {fresh_index.notes_dir}), then index "
                   "again; the index was left as it was.")
    index = open_index(fresh_index, model=model.name)
    assert index.read_state().generation == first.generation
    assert len(index.get_chunks(where=alive_filter(first.generation))["ids"]) == first.chunks
    after = qa.ask("How much memory can a Lambda function get?")
    assert (after.text, after.citations[0].url) == (before.text, "lambda/limits.md#memory")


def test_a_notes_path_that_is_a_file_says_so(tmp_path):
    from ingest.index import load_corpus
    from qa.errors import NotesQAError

    note = tmp_path / "aws-notes.md"
    note.write_text("# Notes\n\nText.\n")
    with pytest.raises(NotesQAError, match=f"The notes folder {note} is a file, not a folder: set NOTES_DIR"):
        load_corpus(note)


def test_a_utf16_note_is_read_by_its_byte_order_mark_and_an_empty_folder_says_so(tmp_path):
    from ingest.index import load_corpus

    notes = tmp_path / "notes"
    notes.mkdir()
    assert load_corpus(notes).warnings == [
        f"{notes} holds no notes (.md, .markdown, .txt files, hidden folders left out): add some, or set NOTES_DIR "
        "to the folder that holds them"]
    text = "---\ntitle: Gletscher\n---\n# Gletscher\n\n## Tempo\n\nGletscher im Tal fließen neun Meter pro Jahr.\n"
    (notes / "windows.md").write_bytes(text.encode("utf-16"))  # Notepad's "Unicode": UTF-16 with a mark
    corpus = load_corpus(notes)
    assert not corpus.skipped and not corpus.warnings
    assert [(s.heading, s.text) for s in corpus.notes[0].content_sections] == [
        ("Tempo", "Gletscher im Tal fließen neun Meter pro Jahr.")]
    assert notes_meta(notes)["windows.md"].title == "Gletscher"


def test_lists_and_quotes_nested_ten_thousand_deep_are_shown_at_a_bounded_depth():
    from markdown_it import MarkdownIt

    from ui.notes import MAX_SHOWN_NESTING, display_markdown

    parser = MarkdownIt("commonmark", {"maxNesting": 100_000})
    for deep in ("- " * 10_000 + "x", "1. " * 10_000 + "x", "> " * 10_000 + "x",
                 "\n".join("  " * i + f"- level {i}" for i in range(2_000))):
        shown, _ = display_markdown(deep, "deep.md")
        nesting = max(t.level for t in parser.parse(shown)) // 2  # a list level is a list and an item
        assert nesting <= MAX_SHOWN_NESTING + 1
        assert shown.rstrip().endswith(("x", "level 1999"))  # the words stay
    shallow = "- a\n  - b\n    - c\n\n> q\n> > r"
    assert display_markdown(shallow, "ok.md")[0] == shallow
