"""Ingest with the real model into a real Chroma: incremental behaviour, bad input, faults."""

from __future__ import annotations

import time

import numpy as np

import pytest
from conftest import SEED_NOTE, free_port, make_settings, run_cli

from ingest.index import sync_index
from qa.errors import ModelMismatch, StoreUnavailable
from qa.store import HNSW_CONFIGURATION, alive_filter, open_index


def alive_ids(settings, model) -> set[str]:
    index = open_index(settings, model=model.name)
    return set(index.get_chunks(where=alive_filter(index.read_state().generation))["ids"])


def physical_ids(settings, model) -> list[str]:
    return open_index(settings, model=model.name).get_chunks()["ids"]


def alive_sources(settings, model) -> set[str]:
    index = open_index(settings, model=model.name)
    metadatas = index.get_chunks(where=alive_filter(index.read_state().generation))["metadatas"]
    return {m["source"] for m in metadatas}


def test_first_ingest_indexes_every_chunk_with_traceable_metadata(fresh_index, model):
    report = sync_index(fresh_index, model, progress=False)
    assert (report.files, report.sections) == (1, 32)
    assert report.added == report.chunks == report.embedded > 40
    index = open_index(fresh_index, model=model.name)
    got = index.get_chunks(include=("metadatas", "documents"))
    assert len(got["ids"]) == report.chunks
    lambda_limits = [m for m in got["metadatas"] if m["anchor"] == "15"]
    assert lambda_limits and lambda_limits[0]["heading_path"] == "Serverless › Lambda › Lambda Limits"
    assert lambda_limits[0]["source"] == "aws-notes.md" and lambda_limits[0]["start_line"] > 0
    assert index.model == "all-MiniLM-L6-v2" and index.dimension == 384
    hnsw = index.collection.configuration["hnsw"]
    assert hnsw["space"] == "cosine" and hnsw["ef_search"] == HNSW_CONFIGURATION["ef_search"]
    assert hnsw["max_neighbors"] == HNSW_CONFIGURATION["max_neighbors"]


def test_second_run_embeds_nothing(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    again = sync_index(fresh_index, model, progress=False)
    assert again.embedded == 0 and again.added == again.updated == again.removed == 0
    assert again.unchanged == again.chunks


def test_editing_one_section_reembeds_only_its_changed_chunks(fresh_index, model, monkeypatch):
    first = sync_index(fresh_index, model, progress=False)
    before = alive_ids(fresh_index, model)
    note = fresh_index.notes_dir / "aws-notes.md"
    text = note.read_text(encoding="utf-8")
    note.write_text(text.replace("Maximum execution time: 900 seconds (15 minutes).",
                                 "Maximum execution time: 900 seconds (15 minutes), a hard limit."), encoding="utf-8")
    report = sync_index(fresh_index, model, progress=False)
    after = alive_ids(fresh_index, model)
    new_ids, gone_ids = after - before, before - after
    assert report.embedded == len(new_ids) == report.updated == 1
    assert len(gone_ids) == 1 and report.removed == 0
    index = open_index(fresh_index, model=model.name)
    changed = index.collection.get(ids=list(new_ids))["metadatas"][0]
    assert changed["anchor"] == "15"
    # The old chunk is retired but kept a while for questions still running on the previous generation…
    assert sorted(physical_ids(fresh_index, model)) == sorted(after | gone_ids)
    assert report.chunks == first.chunks
    # …and a later run deletes it, without a new generation (readers see nothing change).
    monkeypatch.setattr("ingest.index.RETIRED_GRACE_S", 0.0)
    cleaned = sync_index(fresh_index, model, progress=False)
    assert sorted(physical_ids(fresh_index, model)) == sorted(after)
    assert cleaned.generation == report.generation


def test_deleting_and_renaming_files_removes_their_chunks(fresh_index, model):
    extra = fresh_index.notes_dir / "nested" / "extra.md"
    extra.parent.mkdir()
    extra.write_text("# Kinesis\n\nShards carry 1 MB per second of writes.\n", encoding="utf-8")
    report = sync_index(fresh_index, model, progress=False)
    assert report.files == 2
    index = open_index(fresh_index, model=model.name)
    assert index.collection.get(where={"source": "nested/extra.md"})["ids"]
    extra.rename(extra.with_name("renamed.md"))
    renamed = sync_index(fresh_index, model, progress=False)
    assert renamed.removed == 1 and renamed.added == 1 and renamed.embedded == 1
    assert "nested/extra.md" not in alive_sources(fresh_index, model)
    (extra.with_name("renamed.md")).unlink()
    deleted = sync_index(fresh_index, model, progress=False)
    assert deleted.removed == 1 and deleted.files == 1
    assert alive_sources(fresh_index, model) == {"aws-notes.md"}
    assert len(alive_ids(fresh_index, model)) == deleted.chunks


def test_bad_files_are_skipped_with_one_line_each_and_the_rest_is_indexed(fresh_index, model, tmp_path):
    notes = fresh_index.notes_dir
    (notes / "latin1.md").write_bytes("# Caf\xe9\nna\xefve text\n".encode("latin-1"))
    (notes / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    (notes / "empty.md").write_text("   \n", encoding="utf-8")
    (notes / "huge.md").write_text("# Big\n" + "x" * (5 * 1024 * 1024 + 10), encoding="utf-8")
    outside = tmp_path / "outside.md"
    outside.write_text("# Secret\nnot yours\n", encoding="utf-8")
    (notes / "link.md").symlink_to(outside)
    (notes / "toc-only.md").write_text("- [One](#one)\n- [Two](#two)\n", encoding="utf-8")
    (notes / "dupes.md").write_text('<a name="x"></a>\n# A\none\n<a name="x"></a>\n# B\ntwo\n##\nthree\n',
                                    encoding="utf-8")
    report = sync_index(fresh_index, model, progress=False)
    reasons = {line.split(":")[0]: line for line in report.skipped}
    assert set(reasons) == {"latin1.md", "binary.md", "empty.md", "huge.md", "link.md", "toc-only.md"}
    assert "not UTF-8" in reasons["latin1.md"] and "binary" in reasons["binary.md"]
    assert "empty" in reasons["empty.md"] and "MB" in reasons["huge.md"]
    assert "outside the notes folder" in reasons["link.md"] and "table of contents" in reasons["toc-only.md"]
    assert report.files == 2  # the seed note and dupes.md
    assert any("dupes.md" in w and "duplicate anchor" in w for w in report.warnings)
    assert any("dupes.md" in w and "no text" in w for w in report.warnings)
    sources = {m["source"] for m in open_index(fresh_index, model=model.name).get_chunks()["metadatas"]}
    assert sources == {"aws-notes.md", "dupes.md"}


def test_cli_prints_a_summary_and_strict_fails_on_skipped_files(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Alpha\nAlpha is the first letter.\n", encoding="utf-8")
    (notes / "bad.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # (FF FE 00 00 is UTF-32's mark)
    env = {"NOTES_DIR": str(notes), "CHROMA_DIR": str(tmp_path / "idx")}
    done = run_cli("-m", "ingest", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert "1 file, 1 section, 1 chunk: 1 added, 0 updated, 0 removed, 0 unchanged" in done.stdout
    assert "warning: bad.md: skipped: binary file" in done.stderr
    strict = run_cli("-m", "ingest", "--quiet", "--strict", env=env)
    assert strict.returncode == 1 and "0 embedded" in strict.stdout
    missing = run_cli("-m", "ingest", "--notes", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_rebuild_starts_over(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    report = sync_index(fresh_index, model, rebuild=True, progress=False)
    assert report.embedded == report.chunks and report.added == report.chunks
    assert len(physical_ids(fresh_index, model)) == report.chunks


def test_an_index_built_with_another_model_is_refused(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    with pytest.raises(ModelMismatch, match="all-MiniLM-L6-v2.*--rebuild"):
        open_index(fresh_index, model="some-other-model")


def test_unreachable_chroma_server_fails_fast_naming_host_and_port(tmp_path):
    port = free_port()
    started = time.monotonic()
    done = run_cli("-m", "ingest", env={"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port),
                                        "NOTES_DIR": str(SEED_NOTE.parent)}, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2
    assert f"127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 5 + 3  # 5 s budget plus interpreter start-up


def test_ingest_and_answer_through_a_real_chroma_server(chroma_server, seed_dir, model):
    from qa.service import NotesQA

    host, port, _ = chroma_server
    settings = make_settings(seed_dir, seed_dir / "unused", chroma_host=host, chroma_port=port,
                             collection="server-notes")
    report = sync_index(settings, model, progress=False)
    assert report.added == report.chunks > 40
    assert sync_index(settings, model, progress=False).embedded == 0
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    answer = qa.ask("How long can a Lambda function run?")
    assert "900 seconds" in answer.text and answer.citations[0].url == "aws-notes.md#15"


def test_unreachable_server_raises_store_unavailable_within_the_timeout(seed_dir, model):
    settings = make_settings(seed_dir, seed_dir / "unused", chroma_host="127.0.0.1", chroma_port=free_port())
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="127.0.0.1"):
        sync_index(settings, model, progress=False)
    assert time.monotonic() - started < 5


def test_a_running_service_sees_changes_committed_by_another_process(fresh_index, model):
    from qa.service import NotesQA

    sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    assert qa.ask("What is the Zorblax limit?").abstained
    assert qa.ask("How long can a Lambda function run?").citations[0].anchor == "15"
    note = fresh_index.notes_dir / "aws-notes.md"
    text = note.read_text(encoding="utf-8")
    start = text.index('<a name="15"></a>')
    note.write_text(text[:start] + text[text.index('<a name="16"></a>'):], encoding="utf-8")  # drop Lambda Limits
    (fresh_index.notes_dir / "new.md").write_text("# Zorblax\n\nThe Zorblax limit is 77 widgets per second.\n",
                                                  encoding="utf-8")
    env = {"NOTES_DIR": str(fresh_index.notes_dir), "CHROMA_DIR": str(fresh_index.chroma_dir)}
    done = run_cli("-m", "ingest", "--quiet", env=env)  # a second, real process
    assert done.returncode == 0, done.stderr
    added = qa.ask("What is the Zorblax limit?")
    assert not added.abstained and "77 widgets" in added.text and added.citations[0].source == "new.md"
    after = qa.ask("How long can a Lambda function run?")
    assert all(c.anchor != "15" for c in after.citations)
    assert all(s.anchor != "15" for s in after.retrieval.sections)


def test_ingest_widens_the_vector_search_of_an_index_built_before(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    open_index(fresh_index, model=model.name).collection.modify(configuration={"hnsw": {"ef_search": 100}})
    assert open_index(fresh_index, model=model.name).collection.configuration["hnsw"]["ef_search"] == 100
    sync_index(fresh_index, model, progress=False)
    hnsw = open_index(fresh_index, model=model.name).collection.configuration["hnsw"]
    assert hnsw["ef_search"] == HNSW_CONFIGURATION["ef_search"]


def test_the_keyword_index_ingest_writes_equals_the_one_a_reader_builds_from_chroma(fresh_index, model):
    from qa.keyword import build_keyword_index, load_keyword_index

    note = fresh_index.notes_dir / "aws-notes.md"
    text = note.read_text(encoding="utf-8")
    changes = [
        lambda: None,
        lambda: note.write_text(text.replace("Lambda Limits", "Lambda Quotas", 1), encoding="utf-8"),
        lambda: (fresh_index.notes_dir / "extra.md").write_text("# Zorblax\n\nThe Zorblax limit is 77.\n"),
        lambda: (fresh_index.notes_dir / "extra.md").unlink(),
    ]
    for change in changes:
        change()
        report = sync_index(fresh_index, model, progress=False)
        assert list(fresh_index.chroma_dir.glob(f"keyword-*-{report.generation}-*.pkl"))  # written by ingest
        index = open_index(fresh_index, model=model.name)
        written = load_keyword_index(index, report.generation, cache_dir=fresh_index.chroma_dir)
        rebuilt = build_keyword_index(index, report.generation)
        assert written.ids == rebuilt.ids and written.documents == rebuilt.documents
        assert written.metadatas == rebuilt.metadatas and written.sections == rebuilt.sections
        assert written.vocabulary == rebuilt.vocabulary and written.names == rebuilt.names
        assert (written.weights != rebuilt.weights).nnz == 0


def test_a_server_index_keeps_its_keyword_cache_on_this_machine_per_collection(chroma_server, seed_dir, model,
                                                                                 tmp_path, monkeypatch):
    import qa.keyword
    from qa.service import NotesQA
    from qa.store import drop_index

    host, port, _ = chroma_server
    cache = tmp_path / "keyword-cache"
    settings = make_settings(seed_dir, tmp_path / "unused", chroma_host=host, chroma_port=port,
                             collection="server-cached", keyword_cache_dir=cache)
    first = sync_index(settings, model, progress=False)
    assert len(list((cache / f"{host}-{port}").glob(f"keyword-server-cached-*-{first.generation}-*.pkl"))) == 1
    with monkeypatch.context() as patch:
        patch.setattr(qa.keyword, "build_keyword_index", lambda *a, **kw: pytest.fail("rebuilt, not loaded"))
        assert "900 seconds" in NotesQA.load(settings, model=model, build_if_missing=False).ask(
            "How long can a Lambda function run?").text

    # A new collection of the same name (a wiped server), ingested from another machine (another cache),
    # starts again at the same generation number: this machine's cache of the old one must not be used.
    other = tmp_path / "other-notes"
    other.mkdir()
    (other / "zorblax.md").write_text("# Zorblax\n\nThe Zorblax limit is 77 widgets per second.\n")
    drop_index(settings)
    elsewhere = make_settings(other, tmp_path / "unused", chroma_host=host, chroma_port=port,
                              collection="server-cached", keyword_cache_dir=tmp_path / "elsewhere")
    assert sync_index(elsewhere, model, progress=False).generation == first.generation
    answer = NotesQA.load(settings, model=model, build_if_missing=False).ask("What is the Zorblax limit?")
    assert "77 widgets" in answer.text and answer.citations[0].source == "zorblax.md"
    assert answer.retrieval.keyword.ids == [answer.retrieval.sections[0].chunks[0].id]  # not the old notes


def test_the_index_records_the_notes_it_was_built_from_and_an_edit_changes_the_stamp(fresh_index, model):
    from ingest.index import notes_stamp, sync_index
    from qa.store import open_index

    sync_index(fresh_index, model, progress=False)
    recorded = open_index(fresh_index, model=model.name).read_state().notes_stamp
    assert recorded == notes_stamp(fresh_index.notes_dir)
    (fresh_index.notes_dir / "new.md").write_text("# New\n\nA new note about Kafka retention.\n")
    assert notes_stamp(fresh_index.notes_dir) != recorded


def test_watcher_reindexes_when_a_note_changes_and_reports_bad_runs(fresh_index, model):
    import threading
    import time

    from ingest.index import sync_index
    from ingest.watch import watch_notes
    from qa.store import open_index

    sync_index(fresh_index, model, progress=False)
    before = open_index(fresh_index, model=model.name).read_state().generation
    stop, synced = threading.Event(), []
    thread = threading.Thread(target=watch_notes, args=(fresh_index, model), daemon=True,
                              kwargs={"stop": stop, "on_synced": synced.append, "debounce_ms": 200})
    thread.start()
    try:
        time.sleep(1.0)  # the watcher is up
        (fresh_index.notes_dir / "kafka.md").write_text("# Kafka\n\nKafka keeps messages for 7 days by default.\n")
        deadline = time.time() + 60
        while not synced and time.time() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert synced and synced[-1].files == 2
    assert open_index(fresh_index, model=model.name).read_state().generation > before


def test_answer_unit_vectors_stay_in_step_with_the_notes_after_edits_and_deletions(fresh_index, model):
    from ingest.index import load_corpus, sync_index
    from notes.units import unit_embed_text, units_of
    from qa.keyword import cached_keyword_index
    from qa.store import open_index

    def stored_and_wanted():
        index = open_index(fresh_index, model=model.name)
        snapshot = cached_keyword_index(index, index.read_state().generation, cache_dir=fresh_index.keyword_cache)
        sections = [s for n in load_corpus(fresh_index.notes_dir).notes for s in n.content_sections]
        wanted = {unit_embed_text(u, s.breadcrumb) for s in sections for u in units_of(s.text)}
        return snapshot, wanted

    first = sync_index(fresh_index, model, progress=False)
    snapshot, wanted = stored_and_wanted()
    assert first.units_embedded == len(wanted) and set(snapshot.unit_vectors) == wanted

    note = fresh_index.notes_dir / "aws-notes.md"
    note.write_text(note.read_text().replace("Maximum execution time: 900 seconds (15 minutes).",
                                             "Maximum execution time: 899 seconds."))
    (fresh_index.notes_dir / "kafka.md").write_text("# Kafka\n\nKafka keeps messages for 7 days by default.\n")
    edited = sync_index(fresh_index, model, progress=False)
    snapshot, wanted = stored_and_wanted()
    assert 0 < edited.units_embedded < first.units_embedded  # only the changed units are embedded again
    assert set(snapshot.unit_vectors) == wanted
    assert not any("900 seconds" in t for t in snapshot.unit_vectors)
    vector = snapshot.unit_vectors[next(t for t in wanted if "899 seconds" in t)]
    assert abs(float(np.dot(np.asarray(vector, dtype=np.float32), model.embed_texts(
        [next(t for t in wanted if "899 seconds" in t)])[0])) - 1.0) < 1e-3

    (fresh_index.notes_dir / "kafka.md").unlink()
    sync_index(fresh_index, model, progress=False)
    snapshot, wanted = stored_and_wanted()
    assert set(snapshot.unit_vectors) == wanted and not any("Kafka" in t for t in snapshot.unit_vectors)
