"""Faults with real processes: ingest killed at random points, the index folder deleted or corrupted,
the Chroma server restarted, and notes re-ingested while questions are being answered.

Every check compares whole answers (text, citations, abstention) with answers computed on a clean
index of the same notes, so "nothing lost, nothing mixed" is tested end to end, not just by counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, free_port, make_settings, run_cli, serve

from eval.questions import load_questions
from ingest.chunk import chunk_sections
from ingest.index import load_corpus, sync_index
from qa.batch import run_batch
from qa.errors import IndexMissing, StoreUnavailable
from qa.service import NotesQA
from qa.store import alive_filter, open_index

KILL_POINTS = 20
SEED = int(os.environ.get("FAULT_SEED", "20261127"))
LAMBDA = "How long can a Lambda function run?"
# A resident `python -m ingest` equivalent: loads the model once, then runs one ingest per line read.
WORKER = """
import sys
from ingest.index import sync_index
from qa.embeddings import load_embedding_model
from qa.settings import load_settings
settings = load_settings()
model = load_embedding_model()
print("ready", flush=True)
for line in sys.stdin:
    print("done", sync_index(settings, model, progress=False).generation, flush=True)
"""


# Loads the model once, then forks one child per line ("go NOTES_DIR CHROMA_DIR") to run a real ingest
# in its own process: the test kill -9s the child 20 times without paying 20 model loads. The parent
# never runs the model or opens Chroma before forking, so each child starts clean.
ZYGOTE = """
import os, sys
from ingest.index import sync_index
from qa.embeddings import load_embedding_model
from qa.settings import Settings
model = load_embedding_model()
print("ready", flush=True)
for line in sys.stdin:
    _, notes, chroma = line.split()
    pid = os.fork()
    if pid == 0:
        settings = Settings(notes_dir=notes, chroma_dir=chroma, _env_file=None)
        sync_index(settings, model, progress=False)
        os._exit(0)
    print("child", pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("reaped", status, flush=True)
"""


def start_zygote() -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "EMBED_", "LLM_"))}
    env.update(PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    expect_line(proc, "ready")
    return proc


def fork_ingest(zygote: subprocess.Popen, settings, *, kill_after: float | None) -> float:
    """One ingest in a fresh child process, `kill -9`ed after `kill_after` seconds (None: let it finish)."""
    zygote.stdin.write(f"go {settings.notes_dir} {settings.chroma_dir}\n")
    pid = int(expect_line(zygote, "child").split()[1])
    started = time.perf_counter()
    if kill_after is not None:
        time.sleep(kill_after)
        with contextlib.suppress(ProcessLookupError):  # it may have finished (and been reaped) already
            os.kill(pid, signal.SIGKILL)
    status = int(expect_line(zygote, "reaped").split()[1])
    assert status in (0, signal.SIGKILL), f"ingest child ended with status {status}"
    return time.perf_counter() - started


def start_worker(settings) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "EMBED_", "LLM_"))}
    env.update(PYTHONPATH=str(REPO), NOTES_DIR=str(settings.notes_dir), CHROMA_DIR=str(settings.chroma_dir))
    return subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)


def expect_line(proc: subprocess.Popen, word: str) -> str:
    line = proc.stdout.readline()
    assert line.startswith(word), f"worker said {line!r} (exit {proc.poll()})"
    return line


def edited_notes(base: dict[str, str]) -> dict[str, str]:
    """The seed note with one fact changed and one section gone, plus a new note of ~40 chunks."""
    text = base["aws-notes.md"]
    text = text.replace("Maximum execution time: 900 seconds (15 minutes).",
                        "Maximum execution time: 900 seconds (15 minutes), a hard limit.")
    start = text.index('<a name="16"></a>')
    text = text[:start] + text[text.index('<a name="17"></a>'):]
    extra = "# Streams\n\n" + "\n\n".join(
        f"## Stream topic {i}\n\nKinesis shard fact {i}: a shard takes 1 MB/s of writes and serves reads to "
        f"consumer group {i}, retaining records for {i % 7 + 1} days." for i in range(40))
    return {"aws-notes.md": text, "streams.md": extra}


def write_notes(folder: Path, files: dict[str, str]) -> None:
    for path in folder.glob("*.md"):
        if path.name not in files:
            path.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def answer_key(answer) -> tuple:
    return answer.abstained, answer.text, tuple(c.url for c in answer.citations)


def answer_all(qa: NotesQA, items) -> dict[str, tuple]:
    return {item.id: answer_key(qa.ask(item.question, history=list(item.history) or None)) for item in items}


def desired_ids(notes_dir: Path) -> set[str]:
    return {c.id for n in load_corpus(notes_dir).notes for c in chunk_sections(n.content_sections)}


def index_view(settings, model) -> tuple[int, set[str], list[dict]]:
    """(committed generation, ids alive in it, metadata of every physical chunk) as a new reader sees them."""
    index = open_index(settings, model=model.name)
    generation = index.read_state().generation
    alive = set(index.get_chunks(where=alive_filter(generation))["ids"])
    return generation, alive, index.get_chunks()["metadatas"]


@pytest.fixture
def versions(tmp_path, fresh_index, model):
    """Two versions of the notes, each with its reference answers from a clean index of its own."""
    base = {"aws-notes.md": (fresh_index.notes_dir / "aws-notes.md").read_text(encoding="utf-8")}
    out = {}
    for name, files in (("base", base), ("edited", edited_notes(base))):
        settings = make_settings(tmp_path / f"ref-{name}" / "notes", tmp_path / f"ref-{name}" / ".chroma")
        settings.notes_dir.mkdir(parents=True)
        write_notes(settings.notes_dir, files)
        sync_index(settings, model, progress=False)
        out[name] = {"files": files, "settings": settings, "ids": desired_ids(settings.notes_dir),
                     "qa": NotesQA.load(settings, model=model, build_if_missing=False)}
    return out


def test_ingest_killed_at_random_points_keeps_answering_as_before_and_then_finishes(fresh_index, model, versions):
    # Every fifth question and every one about the edited sections: the reader reads each answer's units, so
    # the whole set at each of the kill points would take ten minutes.
    items = [item for n, item in enumerate(load_questions())
             if n % 5 == 0 or any(ref.endswith(("#15", "#16")) for ref in item.references)]
    expected = {name: answer_all(v["qa"], items) for name, v in versions.items()}
    assert expected["base"] != expected["edited"]  # the edit changes answers, so a mix-up would show
    sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    assert answer_all(qa, items) == expected["base"]
    zygote = start_zygote()

    # Kill points are drawn over the length of one uninterrupted run of the same change (on a copy).
    write_notes(fresh_index.notes_dir, versions["edited"]["files"])
    copy = fresh_index.chroma_dir.parent / "timing"
    timing = make_settings(shutil.copytree(fresh_index.notes_dir, copy / "notes"),
                           shutil.copytree(fresh_index.chroma_dir, copy / ".chroma"))
    run_seconds = fork_ingest(zygote, timing, kill_after=None)

    rng = random.Random(SEED)
    committed, target = "base", "edited"
    generation = index_view(fresh_index, model)[0]
    landed_mid_run = 0
    for point in range(KILL_POINTS):
        delay = rng.uniform(0.0, run_seconds * 1.2)
        fork_ingest(zygote, fresh_index, kill_after=delay)
        now, alive, _ = index_view(fresh_index, model)
        if now != generation:  # the kill came after the commit: the new notes are what readers see
            generation, committed, target = now, target, committed
            write_notes(fresh_index.notes_dir, versions[target]["files"])
        else:
            landed_mid_run += 1
        print(f"kill {point}: after {delay:.2f}s of a {run_seconds:.2f}s run, generation {now}, notes {committed}")
        assert alive == versions[committed]["ids"], f"kill {point} after {delay:.2f}s (seed {SEED})"
        assert answer_all(qa, items) == expected[committed], f"kill {point} after {delay:.2f}s (seed {SEED})"
    assert landed_mid_run >= KILL_POINTS // 4  # resumed runs are shorter, so many land after the commit

    fork_ingest(zygote, fresh_index, kill_after=None)
    zygote.kill()
    generation, alive, physical = index_view(fresh_index, model)
    assert alive == versions[target]["ids"] == desired_ids(fresh_index.notes_dir)
    keys = [(m["source"], m["anchor"], m["ordinal"]) for m in physical if m["retired_gen"] > generation]
    assert len(keys) == len(set(keys)) == len(alive)  # no duplicate alive chunks
    # Nothing else is left but chunks retired by this very commit (kept for questions still running).
    assert all(m["retired_gen"] == generation for m in physical if m["retired_gen"] <= generation)
    assert all(m["added_gen"] <= generation for m in physical)  # no orphans of the killed runs
    assert answer_all(qa, items) == expected[target]


def test_a_deleted_index_folder_is_reported_and_rebuild_recovers_without_restarting(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    before = answer_key(qa.ask(LAMBDA))
    shutil.rmtree(fresh_index.chroma_dir)
    with pytest.raises(IndexMissing, match="was deleted or moved; rebuild it with: python -m ingest --rebuild"):
        qa.ask(LAMBDA)
    env = {"NOTES_DIR": str(fresh_index.notes_dir), "CHROMA_DIR": str(fresh_index.chroma_dir)}
    done = run_cli("-m", "ingest", "--rebuild", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert answer_key(qa.ask(LAMBDA)) == before


def test_a_corrupted_index_folder_is_reported_and_rebuild_recovers_without_restarting(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    before = answer_key(qa.ask(LAMBDA))
    database = fresh_index.chroma_dir / "chroma.sqlite3"
    with database.open("r+b") as handle:  # in place, as a disk error would: same file, garbage pages
        handle.write(random.Random(SEED).randbytes(database.stat().st_size))
    with pytest.raises(StoreUnavailable, match="cannot be (read|opened) .*damaged; rebuild it with: python -m ingest --rebuild"):
        qa.ask(LAMBDA)
    env = {"NOTES_DIR": str(fresh_index.notes_dir), "CHROMA_DIR": str(fresh_index.chroma_dir)}
    asked = run_cli("-m", "qa", "ask", LAMBDA, env=env)
    assert asked.returncode == 2 and "python -m ingest --rebuild" in asked.stderr
    assert len(asked.stderr.strip().splitlines()) == 1 and "Traceback" not in asked.stderr
    rebuilt = run_cli("-m", "ingest", "--rebuild", "--quiet", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert answer_key(qa.ask(LAMBDA)) == before


def test_a_chroma_server_stopped_mid_session_fails_clearly_and_works_again_once_restarted(tmp_path, seed_dir, model):
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    command = [chroma, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)]
    settings = make_settings(seed_dir, tmp_path / "unused", chroma_host="127.0.0.1", chroma_port=port)
    with serve(command, port, tmp_path / "chroma-1.log"):
        sync_index(settings, model, progress=False)
        qa = NotesQA.load(settings, model=model, build_if_missing=False)
        before = answer_key(qa.ask(LAMBDA))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"Cannot reach the Chroma server at 127.0.0.1:{port}"):
        qa.ask(LAMBDA)
    assert time.monotonic() - started < settings.chroma_timeout_s + 1
    with serve(command, port, tmp_path / "chroma-2.log"):
        assert answer_key(qa.ask(LAMBDA)) == before  # the same service object: no restart


def test_questions_answered_while_notes_are_reingested_never_mix_versions(fresh_index, model, versions):
    questions = [LAMBDA, "What is the retention of a Kinesis shard in stream topic 3?",
                 "What are the Lambda concurrency limits?", "What is S3?", "How do I pick an EC2 instance type?"]
    expected = {name: {q: answer_key(v["qa"].ask(q)) for q in questions} for name, v in versions.items()}
    assert any(expected["base"][q] != expected["edited"][q] for q in questions)
    first = sync_index(fresh_index, model, progress=False)
    qa = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    worker = start_worker(fresh_index)
    expect_line(worker, "ready")

    seen: list[tuple[int, str, tuple]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask_forever(offset: int) -> None:
        i = offset
        while not stop.is_set():
            question = questions[i % len(questions)]
            try:
                answer = qa.ask(question)
                seen.append((answer.retrieval.generation, question, answer_key(answer)))
            except BaseException as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)
            i += 1

    version_of = {first.generation: "base"}
    askers = [threading.Thread(target=ask_forever, args=(n,)) for n in range(2)]
    for thread in askers:
        thread.start()
    try:
        for name in ["edited", "base", "edited", "base"]:
            write_notes(fresh_index.notes_dir, versions[name]["files"])
            worker.stdin.write("go\n")
            generation = int(expect_line(worker, "done").split()[1])
            version_of[generation] = name
            deadline = time.monotonic() + 120
            while not any(g == generation for g, _, _ in seen[-4:]) and time.monotonic() < deadline:
                time.sleep(0.05)  # until the askers have moved on to the new generation
    finally:
        stop.set()
        for thread in askers:
            thread.join()
        worker.kill()
    assert not errors, errors[:3]
    assert len(version_of) == 5 and {g for g, _, _ in seen} >= set(version_of) - {first.generation}
    for generation, question, key in seen:
        assert key == expected[version_of[generation]][question], (generation, question)


def kill_when_stderr_shows(command: list[str], word: bytes, *, env: dict, timeout: float = 300) -> bytes:
    """Start `command`, read its stderr as it comes (tqdm writes `\\r`, not lines) and `kill -9` it the moment
    `word` appears; returns what it had written. Fails when it ends before saying `word`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "EMBED_", "LLM_"))}
    full_env.update(PYTHONPATH=str(REPO), **env)
    proc = subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while word not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk and time.monotonic() < deadline, f"ended before {word!r}: {seen[-2000:]!r}"
            seen += chunk
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return seen


def test_new_notes_become_searchable_after_ingest_is_killed_while_embedding_answer_units(fresh_index, model):
    first = sync_index(fresh_index, model, progress=False)
    (fresh_index.notes_dir / "glaciers.md").write_text("# Glaciers\n\n" + "\n\n".join(
        f"## Glacier {i}\n\nGlacier number {i} moves {i + 3} metres a year across valley {i}." for i in range(300)))
    env = {"NOTES_DIR": str(fresh_index.notes_dir), "CHROMA_DIR": str(fresh_index.chroma_dir)}
    kill_when_stderr_shows([sys.executable, "-m", "ingest"], b"Answer units", env=env)
    index = open_index(fresh_index, model=model.name)
    assert index.read_state().generation == first.generation  # killed before its commit
    assert len(index.get_chunks()["ids"]) == first.chunks + 300  # with every new chunk already embedded

    again = sync_index(fresh_index, model, progress=False)
    assert again.embedded == 0 and again.generation > first.generation
    alive = {m["source"] for m in open_index(fresh_index, model=model.name).get_chunks(
        where=alive_filter(again.generation))["metadatas"]}
    assert alive == {"aws-notes.md", "glaciers.md"}
    answer = NotesQA.load(fresh_index, model=model, build_if_missing=False).ask(
        "How many metres a year does glacier number 217 move?")
    assert not answer.abstained and answer.citations[0].url == "glaciers.md#glacier-217"


def test_a_service_left_on_an_older_client_answers_across_all_notes_after_reindexes_in_the_same_process(
        tmp_path, fresh_index, model, monkeypatch):
    # The app keeps one service per configuration: after NOTES_DIR changes, the old folder's service and
    # the new one share the index folder, and either may reread it (a new Chroma client) after a commit.
    sync_index(fresh_index, model, progress=False)
    old = NotesQA.load(fresh_index, model=model, build_if_missing=False)
    old.ask(LAMBDA)
    moved = make_settings(tmp_path / "new-notes", fresh_index.chroma_dir)
    moved.notes_dir.mkdir()
    note = moved.notes_dir / "kafka.md"
    note.write_text("# Kafka\n\n## Retention\n\nKafka keeps messages for 7 days by default.\n\n"
                    "## Partitions\n\nA topic is split into partitions spread over the brokers.\n")
    new = NotesQA.load(moved, model=model, build_if_missing=False)
    new.ask("warm up")
    for edit in ("", "\n## Consumers\n\nConsumers in a group share the partitions.\n"):
        note.write_text(note.read_text() + edit)
        sync_index(moved, model, progress=False)  # Re-index now: the seed's 183 chunks are retired
        new.ask("How long does Kafka keep messages?")
        old.ask(LAMBDA)  # the old configuration's service rereads the folder after the commit
    monkeypatch.setattr("ingest.index.RETIRED_GRACE_S", 0.0)  # a minute later: retired chunks are deleted
    sync_index(moved, model, progress=False)  # Re-index notes again, nothing changed
    for _ in range(3):
        answer = new.ask("How long does Kafka keep messages?")
        assert not answer.abstained and answer.citations[0].url == "kafka.md#retention"


def test_qa_batch_loses_no_question_when_the_chroma_server_stops_for_eight_seconds(tmp_path, seed_dir, model):
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    command = [chroma, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)]
    settings = make_settings(seed_dir, tmp_path / "unused", chroma_host="127.0.0.1", chroma_port=port,
                             keyword_cache_dir=tmp_path / "keyword-cache")
    questions = [item.question for item in load_questions() if not item.history][:40]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "EMBED_", "LLM_", "KEYWORD_"))}
    env.update(PYTHONPATH=str(REPO), NOTES_DIR=str(seed_dir), CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(port),
               KEYWORD_CACHE_DIR=str(tmp_path / "keyword-cache"))
    with serve(command, port, tmp_path / "chroma-1.log"):
        sync_index(settings, model, progress=False)
        expected = [answer_key(a) for a in map(NotesQA.load(settings, model=model, build_if_missing=False).ask,
                                               questions)]
        batch = subprocess.Popen([sys.executable, "-m", "qa", "batch", "--json"], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, cwd=tmp_path)
        out = []
        for number, question in enumerate(questions[:20]):
            batch.stdin.write(json.dumps({"id": number, "question": question}) + "\n")
            out.append(json.loads(batch.stdout.readline()))
    for number, question in enumerate(questions[20:], start=20):  # asked while the server is down
        batch.stdin.write(json.dumps({"id": number, "question": question}) + "\n")
    time.sleep(8)
    with serve(command, port, tmp_path / "chroma-2.log"):
        batch.stdin.close()
        out += [json.loads(line) for line in batch.stdout]
        assert batch.wait(timeout=60) == 0, batch.stderr.read()
        qa = NotesQA.load(settings, model=model, build_if_missing=False)
    assert [o["id"] for o in out] == list(range(40))
    assert [o.get("error") for o in out] == [None] * 40
    assert [(o["abstained"], o["answer"], tuple(c["url"] for c in o["citations"])) for o in out] == expected

    # A server gone for good: the first line waits out the window, the next ones fail at once, all in order.
    lines = io.StringIO("".join(json.dumps({"id": n, "question": q}) + "\n" for n, q in enumerate(questions[:3])))
    written = io.StringIO()
    started = time.monotonic()
    assert run_batch(qa, {}, retry_s=2.0, lines=lines, out=written) == 2
    assert time.monotonic() - started < 2.0 + 3 * settings.chroma_timeout_s
    failed = [json.loads(line) for line in written.getvalue().splitlines()]
    assert [o["id"] for o in failed] == [0, 1, 2]
    assert all(o["error"].startswith(f"Cannot reach the Chroma server at 127.0.0.1:{port}") for o in failed)


def test_a_partly_zeroed_index_database_is_one_line_from_ask_and_ingest_and_rebuild_recovers(fresh_index, model):
    sync_index(fresh_index, model, progress=False)
    database = fresh_index.chroma_dir / "chroma.sqlite3"
    assert database.stat().st_size > 207 * 4096
    with database.open("r+b") as handle:  # dd if=/dev/zero of=chroma.sqlite3 bs=4096 seek=187 count=20 conv=notrunc
        handle.seek(187 * 4096)
        handle.write(bytes(20 * 4096))
    env = {"NOTES_DIR": str(fresh_index.notes_dir), "CHROMA_DIR": str(fresh_index.chroma_dir)}
    for command in (["-m", "qa", "ask", LAMBDA], ["-m", "ingest", "--quiet"]):
        done = run_cli(*command, env=env)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert re.fullmatch(f"error: The index folder {re.escape(str(fresh_index.chroma_dir))} cannot be read "
                            r"\(\w+\), it may be damaged; rebuild it with: python -m ingest --rebuild", done.stderr.strip())
    sync_index(fresh_index, model, rebuild=True, progress=False)
    answer = NotesQA.load(fresh_index, model=model, build_if_missing=False).ask(LAMBDA)
    assert answer.citations[0].url == "aws-notes.md#15"
