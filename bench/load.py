"""Load benchmark: N concurrent clients asking the eval questions against one process, loopback only.

    python -m bench.load [--clients 8] [--seconds 30] [--target qa|streamlit|server|all]

First builds a temp index of the seed notes (corpus/) and answers every eval question once sequentially
(after a warm-up pass): those answers are the reference, their latencies the sequential baseline. Then,
for --seconds, --clients clients ask the questions round-robin against one process:

- qa: threads in this process sharing one `NotesQA` (embedded Chroma PersistentClient);
- server: the same, with the index in a real `chroma run` server on a free loopback port;
- streamlit: `streamlit run app.py` on a free loopback port (LLM_PROVIDER=none), one headless Chromium
  with one context (its own Streamlit session) per client, driven with Playwright's async API. The app
  keeps a chat history per session and treats follow-ups as such, so each eval item is one conversation:
  "Clear chat", then its history's user turns (if any), then the question; each turn is typed into the
  chat input and timed from Enter until its answer is drawn in full ("What was searched" shown). The
  reference of each turn is `NotesQA.ask` with the history the app itself would pass
  (`ui.answers.history_for_ask`). A browser turn takes seconds, so this target cycles over
  --browser-items items spread over the file: one untimed pass over them with all clients first (it
  fills the app's per-process caches, as the in-process targets' warm-up does, and is checked too), then
  the baseline (1 browser client for --seconds), then --clients clients for --seconds.

The qa target then also asks --browser-items items on cold caches (a freshly loaded model, as after a
restart) from 1 thread and from --clients threads, counting the passage texts encoded. Server targets
report the CPU their process (and, for streamlit, the browser side) used during the run.

Every answer must equal its reference (answer text and cited sections; in the browser: the visible
answer text and the note/anchor of each [n] link). Exit status 1 on any error or mismatch, a browser
answer not drawn within 120 s counting as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from bench.processes import free_port, serve
from bench.stats import percentile

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIENTS = 8
DEFAULT_SECONDS = 30.0
DEFAULT_TARGET = "all"
TARGETS = ("qa", "server", "streamlit")
DEFAULT_QUESTIONS = REPO / "eval" / "questions.jsonl"
DEFAULT_NOTES = REPO / "corpus"
DEFAULT_BROWSER_ITEMS = 32
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PROJECT_ENV_PREFIXES = ("NOTES_", "CHROMA_", "EMBED_", "LLM_", "COLLECTION")
START_TIMEOUT_S = 180.0
PAGE_TIMEOUT_MS = 180_000
ANSWER_TIMEOUT_MS = 120_000
NOT_IN_NOTES = "Not in your notes."  # the bold prefix the chat shows before an abstention
SHOWN_ERRORS = 5
SERVER_TIME = re.compile(r"Answered in [\d.]+ ms on the server")
IDLE_APP = '[data-testid="stApp"][data-test-script-state="notRunning"]'


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Item:
    """One eval question and the conversation before it."""

    id: str
    question: str
    history: tuple[dict, ...] = ()

    @property
    def turns(self) -> list[str]:
        """What a user types in the chat: the history's user turns, then the question."""
        return [m["content"] for m in self.history if m.get("role") == "user"] + [self.question]


@dataclass(frozen=True)
class Signature:
    """What must not change under load: the answer text and the cited sections, in order."""

    text: str
    abstained: bool
    cited: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, answer: dict) -> "Signature":
        return cls(" ".join(answer["answer"].split()), bool(answer["abstained"]),
                   tuple((c["source"], c["anchor"]) for c in answer["citations"]))

    @property
    def visible(self) -> str:
        """The answer as the chat shows it (an abstention gets a bold prefix)."""
        return f"{NOT_IN_NOTES} {self.text}" if self.abstained else self.text


@dataclass
class Observation:
    """One question answered (or failed) under load."""

    client: int
    key: str
    latency_ms: float
    ok: bool
    error: str | None = None
    trace: str | None = None
    mismatch: str | None = None
    detail_diff: bool = False
    server_ms: float | None = None  # the app's own "Answered in … ms on the server" (browser runs)
    paced_ms: float | None = None  # the chat's deliberate word-by-word pacing of that answer (browser runs)


@dataclass
class LoadResult:
    """One target's run: the concurrent latencies and the sequential baseline."""

    target: str
    clients: int
    wall_s: float
    observations: list[Observation]
    sequential_ms: list[float]
    sequential_label: str
    notes: list[str] = field(default_factory=list)
    baseline_failures: list[Observation] = field(default_factory=list)  # warm-up / 1-client browser runs
    cold_failures: int = 0  # errors and mismatches of the cold-cache passes

    @property
    def latencies(self) -> list[float]:
        return [o.latency_ms for o in self.observations if o.error is None]

    @property
    def errors(self) -> list[Observation]:
        return [o for o in self.observations if o.error is not None]

    @property
    def mismatches(self) -> list[Observation]:
        return [o for o in self.observations if o.mismatch is not None]

    @property
    def detail_diffs(self) -> int:
        return sum(o.detail_diff for o in self.observations)

    @property
    def throughput(self) -> float:
        return len(self.observations) / self.wall_s if self.wall_s else 0.0

    @property
    def passed(self) -> bool:
        return (bool(self.observations) and bool(self.sequential_ms) and not self.errors and not self.mismatches
                and not self.other_failures)

    @property
    def other_failures(self) -> int:
        """Errors and mismatches outside the timed concurrent run (warm-up, baseline, cold passes)."""
        return len(self.baseline_failures) + self.cold_failures


# ------------------------------------------------------------------------------------------ helpers


def read_items(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            items.append(Item(data.get("id", str(len(items))), data["question"], tuple(data.get("history") or ())))
    return items


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so every `finally` runs and the children are stopped."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_cpu_s(pids: set[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[pid] = process_cpu_s(pid)
    return out


@dataclass
class CpuMeter:
    """CPU seconds used between two `mark()`s by a server process (and its children), by this process,
    and by every other process below this one (the browser side: the Playwright driver and Chromium)."""

    server_pid: int
    marks: list[tuple[float, dict[int, float]]] = field(default_factory=list)

    def mark(self) -> None:
        pids = descendants(os.getpid()) | {os.getpid(), self.server_pid}
        self.marks.append((time.perf_counter(), tree_cpu_s(pids)))

    def describe(self, server_name: str) -> str:
        (t0, before), (t1, after) = self.marks[0], self.marks[-1]
        used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        server_tree = {self.server_pid} | descendants(self.server_pid)
        server = sum(v for pid, v in used.items() if pid in server_tree)
        here = used.get(os.getpid(), 0.0)
        others = sum(used.values()) - server - here
        wall = t1 - t0
        text = f"CPU used during the run ({wall:.0f} s, {os.cpu_count()} cores): {server_name} {server / wall:.2f}"
        text += f" cores, this process {here / wall:.2f} cores"
        if others / wall >= 0.01:
            text += f", browser side (Playwright driver + Chromium) {others / wall:.2f} cores"
        return text


def clean_env(**project) -> dict[str, str]:
    """This environment without any Notes Q&A variable, plus `project` (and the repo on PYTHONPATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    env.update(PYTHONPATH=str(REPO), **{k: str(v) for k, v in project.items()})
    return env


def streamlit_command(port: int) -> list[str]:
    """The app as tests/test_browser.py starts it; no file watcher, so others' edits cannot touch the run."""
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
            "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]


def app_env(notes: Path, chroma: Path) -> dict[str, str]:
    return clean_env(NOTES_DIR=notes, CHROMA_DIR=chroma, CHROMA_HOST="", LLM_PROVIDER="none")


def make_settings(notes: Path, chroma: Path, **extra):
    from qa.settings import Settings

    return Settings(notes_dir=notes, chroma_dir=chroma, llm_provider="none", _env_file=None, **extra)


def bypass_query_cache(model) -> bool:
    """Make `model.embed_query` embed every question anew (the model memoises question vectors, so in a
    load test cycling over the eval set every question would be a cache hit); False when there is no cache."""
    encode = getattr(getattr(model, "_cached_query", None), "__wrapped__", None)  # what the lru_cache wraps
    if encode is None:
        return False
    model.embed_query = lambda text: list(encode(text))  # an instance attribute shadows the cached method
    return True


def describe_code() -> str:
    """The commit measured and the tracked files changed in the working tree (others edit concurrently)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = git("diff", "--name-only", "HEAD").split()
    return f"code {git('rev-parse', '--short', 'HEAD') or '?'}" + (
        f" + working-tree changes in {', '.join(changed)}" if changed else " (clean)")


def strip_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


# ---------------------------------------------------------------------------------------- in process


@dataclass
class Reference:
    """The sequential answers (full dicts, timings dropped) and their latencies."""

    answers: dict[str, dict]
    latencies_ms: list[float]
    unstable: list[str]  # keys whose warm-up answer differed from the reference answer


def run_sequential(qa, items: list[Item]) -> Reference:
    """Every item once to warm the caches, then once more timed: the reference answers.

    Asked from one worker thread, like the concurrent clients and the app's script threads: on a busy
    machine torch encodes issued from the main thread ran ~15x slower than from any other thread here.
    """
    def ask_all() -> Reference:
        warm = {item.id: strip_timings(qa.ask(item.question, history=list(item.history)).to_dict())
                for item in items}
        answers, latencies = {}, []
        for item in items:
            started = time.perf_counter()
            answer = qa.ask(item.question, history=list(item.history)).to_dict()
            latencies.append((time.perf_counter() - started) * 1000)
            answers[item.id] = strip_timings(answer)
        return Reference(answers, latencies, [k for k in answers if answers[k] != warm[k]])

    with ThreadPoolExecutor(1, thread_name_prefix="sequential") as pool:
        return pool.submit(ask_all).result()


def check_answer(answer: dict, expected: dict) -> tuple[str | None, bool]:
    """(mismatch description or None, whether anything else in the answer differs)."""
    got, want = Signature.of(answer), Signature.of(expected)
    mismatch = None
    if got != want:
        mismatch = f"got {got.visible[:90]!r} {got.cited} / expected {want.visible[:90]!r} {want.cited}"
    return mismatch, strip_timings(answer) != expected


def run_threads(qa, items: list[Item], reference: Reference, *, clients: int, seconds: float
                ) -> tuple[list[Observation], float]:
    """`clients` threads asking round-robin on one shared `NotesQA` until `seconds` have passed."""
    counter = itertools.count()  # next() on a count is atomic under the GIL
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(number: int) -> list[Observation]:
        out = []
        start.wait()
        while time.monotonic() < deadline[0]:
            item = items[next(counter) % len(items)]
            started = time.perf_counter()
            try:
                answer = qa.ask(item.question, history=list(item.history)).to_dict()
            except Exception as exc:  # an error under load is a result, not a crash
                out.append(Observation(number, item.id, (time.perf_counter() - started) * 1000, False,
                                       error=describe_error(exc), trace=traceback.format_exc()))
                continue
            latency = (time.perf_counter() - started) * 1000
            mismatch, diff = check_answer(answer, reference.answers[item.id])
            out.append(Observation(number, item.id, latency, mismatch is None, mismatch=mismatch, detail_diff=diff))
        return out

    with ThreadPoolExecutor(clients, thread_name_prefix="client") as pool:
        futures = [pool.submit(client, n) for n in range(clients)]
        deadline[0] = time.monotonic() + seconds
        began = time.perf_counter()
        start.wait()
        observations = [o for f in futures for o in f.result()]
        wall = time.perf_counter() - began
    return observations, wall


def bench_in_process(target: str, qa, items: list[Item], reference: Reference, *, clients: int,
                     seconds: float, notes: list[str] | None = None) -> LoadResult:
    observations, wall = run_threads(qa, items, reference, clients=clients, seconds=seconds)
    result = LoadResult(target, clients, wall, observations, reference.latencies_ms,
                        f"sequential, {len(items)} questions, warm", list(notes or []))
    if reference.unstable:
        result.notes.append(f"sequential warm-up vs reference differ on {len(reference.unstable)} questions: "
                            f"{', '.join(reference.unstable[:8])}")
    return result


class CountingEmbeddings:
    """Stands in for a model's LangChain embeddings object: counts the passage texts actually encoded."""

    def __init__(self, embeddings):
        self.embeddings = embeddings
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            self.texts.extend(texts)
        return self.embeddings.embed_documents(texts)

    def __getattr__(self, name):
        return getattr(self.embeddings, name)


@dataclass
class ColdPass:
    """Each item asked once on a freshly loaded `NotesQA` (empty answer-unit cache), by `clients` threads."""

    clients: int
    wall_s: float
    latencies_ms: list[float]
    embedded: int  # passage texts (answer units) encoded by the model
    distinct: int  # of which different
    failures: list[str]

    def describe(self) -> str:
        return (f"{self.clients} thread{'s' if self.clients > 1 else ''} {self.wall_s:.1f} s (ask p50 "
                f"{percentile(self.latencies_ms, .5):.0f} ms, max {max(self.latencies_ms, default=0):.0f} ms; "
                f"{self.embedded} passage texts encoded for {self.distinct} distinct)")


def run_cold_pass(settings, items: list[Item], reference: Reference, *, clients: int) -> ColdPass:
    """As after a restart: a freshly loaded model (every per-process vector cache empty) and `NotesQA`,
    warmed with one question like the app does, then every item once from `clients` threads."""
    from qa.embeddings import load_embedding_model
    from qa.service import NotesQA

    model = load_embedding_model()
    counting = CountingEmbeddings(model.embeddings)
    model.embeddings = counting
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    qa.ask("warm up the model")
    counting.texts.clear()

    def ask(item: Item) -> tuple[float, str | None]:
        started = time.perf_counter()
        try:
            answer = qa.ask(item.question, history=list(item.history)).to_dict()
        except Exception as exc:
            return (time.perf_counter() - started) * 1000, f"{item.id}: {describe_error(exc)}"
        mismatch, _ = check_answer(answer, reference.answers[item.id])
        return (time.perf_counter() - started) * 1000, mismatch and f"{item.id}: {mismatch}"

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(ask, items))
    wall = time.perf_counter() - began
    return ColdPass(clients, wall, [d[0] for d in done], len(counting.texts), len(set(counting.texts)),
                    [d[1] for d in done if d[1]])


def compare_cold_passes(settings, items: list[Item], reference: Reference, *, clients: int
                        ) -> tuple[list[str], list[str]]:
    """(notes, failures) of a cold sequential pass and a cold `clients`-thread pass over `items`."""
    passes = [run_cold_pass(settings, items, reference, clients=n) for n in (1, clients)]
    notes = [f"cold caches ({len(items)} items, fresh NotesQA each): " + "; ".join(p.describe() for p in passes)]
    return notes, [f for p in passes for f in p.failures]


@contextlib.contextmanager
def run_chroma_server(root: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """`chroma run` on a free loopback port over an empty folder; yields (port, process)."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = root / "chroma-server"
    path.mkdir()
    command = [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    with serve(command, port, root / "chroma-server.log", timeout=START_TIMEOUT_S) as proc:
        yield port, proc


def bench_server(model, notes: Path, root: Path, items: list[Item], *, clients: int, seconds: float,
                 embedded: Reference | None) -> LoadResult:
    from ingest.index import sync_index
    from qa.service import NotesQA

    with run_chroma_server(root) as (port, proc):
        settings = make_settings(notes, root / "unused-local-index", chroma_host="127.0.0.1", chroma_port=port)
        sync_index(settings, model, progress=False)
        qa = NotesQA.load(settings, model=model, build_if_missing=False)
        reference = run_sequential(qa, items)
        extra = []
        if embedded is not None:
            differ = [k for k in reference.answers
                      if Signature.of(reference.answers[k]) != Signature.of(embedded.answers[k])]
            extra.append(f"server vs embedded sequential answers: {len(differ)} of {len(items)} differ"
                         + (f" ({', '.join(differ[:8])})" if differ else ""))
        meter = CpuMeter(proc.pid)
        meter.mark()
        result = bench_in_process("server", qa, items, reference, clients=clients, seconds=seconds, notes=extra)
        meter.mark()
        result.notes.append(meter.describe("chroma server"))
        return result


# ----------------------------------------------------------------------------------------- streamlit


def conversation_references(qa, items: list[Item]) -> dict[str, list[dict]]:
    """Per item, the answer of each turn as the chat computes it (history from the chat's messages)."""
    from ui.answers import assistant_message, history_for_ask, user_message

    out = {}
    for item in items:
        messages, answers = [], []
        for turn in item.turns:
            answer = qa.ask(turn, history=history_for_ask(messages))
            messages += [user_message(turn), assistant_message(answer, 0.0)]
            answers.append(strip_timings(answer.to_dict()))
        out[item.id] = answers
    return out


def read_stream_delay_s() -> float:
    """The chat page's deliberate per-token pause while streaming an answer (0 when not found)."""
    match = re.search(r"^STREAM_DELAY_S = ([\d.]+)", (REPO / "ui" / "pages" / "chat.py").read_text(), re.M)
    return float(match.group(1)) if match else 0.0


def paced_ms(answer: dict, delay_s: float) -> float:
    """How long the chat spends pacing `answer` on purpose (tokens x delay)."""
    from ui.answers import answer_tokens

    return len(answer_tokens({"answer": answer})) * delay_s * 1000


def describe_browser_error(exc: Exception) -> str:
    if isinstance(exc, AssertionError) and "expected to" in str(exc):  # an `expect(...)` that ran out of time
        return f"timeout: no complete answer within {ANSWER_TIMEOUT_MS / 1000:.0f} s ({describe_error(exc)[:60]}…)"
    return describe_error(exc)


def read_link(href: str) -> tuple[str, str]:
    params = parse_qs(urlparse(href).query)
    return params.get("note", [""])[0], params.get("anchor", [""])[0]


async def wait_idle(page) -> None:
    """Until the script run is over (the app root says so and the "running" widget is gone)."""
    from playwright.async_api import expect

    await expect(page.locator(IDLE_APP)).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
    await expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)


async def open_chat(context, url: str):
    from playwright.async_api import expect

    page = await context.new_page()
    await page.goto(url, timeout=PAGE_TIMEOUT_MS)
    box = page.get_by_test_id("stChatInputTextArea")
    await expect(box).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
    await wait_idle(page)
    return page, box


async def clear_chat(page) -> None:
    from playwright.async_api import expect

    messages = page.get_by_test_id("stChatMessage")
    if await messages.count():
        await page.get_by_role("button", name="Clear chat").click()
        await expect(messages).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
        await wait_idle(page)


async def read_reply(reply) -> Signature | str:
    """The answer the chat shows (text and the note/anchor of each [n] link), or the error it shows."""
    alerts = reply.get_by_test_id("stAlert")
    if await alerts.count():
        return "error shown: " + " ".join((await alerts.first.inner_text()).split())[:200]
    shown = reply.get_by_test_id("stMarkdownContainer").first
    text = " ".join((await shown.inner_text()).split())
    hrefs = await shown.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    abstained = text.startswith(NOT_IN_NOTES)
    if abstained:
        text = text[len(NOT_IN_NOTES):].strip()
    return Signature(text, abstained, tuple(read_link(h) for h in hrefs if h))


async def read_server_ms(reply) -> float | None:
    """The server-side time the app prints in the (collapsed) "What was searched" expander."""
    caption = reply.get_by_text(SERVER_TIME)
    if not await caption.count():
        return None
    match = re.search(r"Answered in ([\d.]+) ms", await caption.first.text_content() or "")
    return float(match.group(1)) if match else None


async def ask_turn(page, box, turn: str, position: int) -> tuple[float, Signature | str, float | None]:
    """Type `turn`, press Enter; the latency until the answer is drawn in full, what it shows, server ms."""
    from playwright.async_api import expect

    await box.fill(turn)
    started = time.perf_counter()
    await box.press("Enter")
    reply = page.get_by_test_id("stChatMessage").nth(2 * position + 1)
    done = reply.get_by_text("What was searched").or_(reply.get_by_test_id("stAlert"))
    await expect(done.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    latency = (time.perf_counter() - started) * 1000
    shown = await read_reply(reply)
    await wait_idle(page)  # the timing caption is drawn last
    return latency, shown, await read_server_ms(reply)


async def drive_client(context, page, box, url: str, number: int, items: list[Item],
                       references: dict[str, list[dict]], counter, deadline: float, limit: int | None
                       ) -> list[Observation]:
    """One Streamlit session (its own browser context) asking conversations until the deadline
    (or until `limit` conversations have been handed out to all clients)."""
    out: list[Observation] = []
    while time.monotonic() < deadline:
        taken = next(counter)
        if limit is not None and taken >= limit:
            break
        item = items[taken % len(items)]
        try:
            await clear_chat(page)
        except Exception as exc:
            out.append(Observation(number, f"{item.id}/clear", 0.0, False, error=describe_browser_error(exc),
                                   trace=traceback.format_exc()))
            page, box = await reopen_page(page, context, url)
            continue
        for position, turn in enumerate(item.turns):
            key = f"{item.id}/{position}"
            started = time.perf_counter()
            try:
                latency, shown, server_ms = await ask_turn(page, box, turn, position)
            except Exception as exc:
                out.append(Observation(number, key, (time.perf_counter() - started) * 1000, False,
                                       error=describe_browser_error(exc), trace=traceback.format_exc()))
                page, box = await reopen_page(page, context, url)
                break
            if isinstance(shown, str):
                out.append(Observation(number, key, latency, False, error=shown))
                break
            want = Signature.of(references[item.id][position])
            mismatch = None if shown == want else (
                f"shown {shown.visible[:90]!r} {shown.cited} / expected {want.visible[:90]!r} {want.cited}")
            out.append(Observation(number, key, latency, mismatch is None, mismatch=mismatch, server_ms=server_ms))
    return out


async def reopen_page(page, context, url: str):
    """After a failure, a fresh page (new session) so the next conversation starts clean."""
    with contextlib.suppress(Exception):
        await page.close()
    return await open_chat(context, url)


async def drive_browsers(url: str, items: list[Item], references: dict[str, list[dict]], *, clients: int,
                         seconds: float = float("inf"), limit: int | None = None, on_clock=None
                         ) -> tuple[list[Observation], float]:
    """`clients` sessions in one headless Chromium, all asking until `seconds` have passed (or `limit`
    conversations were asked). The pages are opened (and the app is loaded) before the clock starts;
    `on_clock()` is called when it starts and when it stops.
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            contexts = [await browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(clients)]
            pages = await asyncio.gather(*(open_chat(c, url) for c in contexts))
            counter = itertools.count()
            if on_clock is not None:
                on_clock()
            deadline = time.monotonic() + seconds
            began = time.perf_counter()
            clients_ = [drive_client(c, page, box, url, n, items, references, counter, deadline, limit)
                        for n, (c, (page, box)) in enumerate(zip(contexts, pages))]
            results = await asyncio.gather(*clients_)
            wall = time.perf_counter() - began
            if on_clock is not None:
                on_clock()
        finally:
            await browser.close()
    return [o for r in results for o in r], wall


def spread_items(items: list[Item], count: int) -> list[Item]:
    """`count` items evenly spaced over the file (so follow-ups at its end are included)."""
    if count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def bench_streamlit(qa, notes: Path, chroma: Path, root: Path, items: list[Item], *, clients: int,
                    seconds: float, browser_items: int) -> LoadResult:
    """The app in one process; a warm-up pass over the chosen items, then 1 client, then `clients`."""
    items = spread_items(items, browser_items)
    references = conversation_references(qa, items)
    app_index = root / "app-index"
    shutil.copytree(chroma, app_index)  # the app gets its own copy: two processes never share a folder
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve(streamlit_command(port), port, root / "streamlit.log", timeout=START_TIMEOUT_S, cwd=REPO,
               env=app_env(notes, app_index)) as proc:
        warm, warm_wall = asyncio.run(drive_browsers(url, items, references, clients=clients, limit=len(items)))
        sequential, _ = asyncio.run(drive_browsers(url, items, references, clients=1, seconds=seconds))
        meter = CpuMeter(proc.pid)
        observations, wall = asyncio.run(drive_browsers(url, items, references, clients=clients, seconds=seconds,
                                                        on_clock=meter.mark))
        cpu_note = meter.describe("streamlit")
    delay_s = read_stream_delay_s()
    paced = {f"{key}/{n}": paced_ms(answer, delay_s)
             for key, answers in references.items() for n, answer in enumerate(answers)}
    for o in warm + sequential + observations:
        o.paced_ms = paced.get(o.key)
    turns = sum(len(i.turns) for i in items)
    warm_ok = [o.latency_ms for o in warm if o.error is None]
    warm_server = [o.server_ms for o in warm if o.server_ms is not None]
    notes_ = [f"{len(items)} eval items spread over the file, each one conversation: Clear chat, its history's "
              f"user turns, then the question ({turns} turns)",
              f"untimed warm-up first ({clients} clients, each item once, cold per-process caches): {len(warm)} turns "
              f"in {warm_wall:.0f} s, p50 {percentile(warm_ok, .5):.0f} ms, p95 {percentile(warm_ok, .95):.0f} ms, "
              f"server-side p95 {percentile(warm_server, .95):.0f} ms"]
    bad = [o for o in warm + sequential if o.error or o.mismatch]
    seq_ok = [o.latency_ms for o in sequential if o.error is None]
    notes_.append(cpu_note)
    return LoadResult("streamlit", clients, wall, observations, seq_ok,
                      f"1 browser client, {seconds:.0f} s, {len(seq_ok)} turns", notes_, bad)


# ------------------------------------------------------------------------------------------ reporting


def print_failures(result: LoadResult) -> None:
    for label, bad in (("error", result.errors), ("mismatch", result.mismatches),
                       ("warm-up/baseline failure", result.baseline_failures)):
        if not bad:
            continue
        kinds = Counter((o.error or o.mismatch or "")[:120] for o in bad)
        print(f"  {result.target}: {len(bad)} {label}s, {len(kinds)} distinct:")
        for text, n in kinds.most_common(SHOWN_ERRORS):
            example = next(o for o in bad if (o.error or o.mismatch or "")[:120] == text)
            print(f"    {n} x [{example.key}] {text}")
        traced = next((o for o in bad if o.trace), None)
        if traced:
            print("    first traceback:\n      " + "\n      ".join(traced.trace.rstrip().splitlines()[-14:]))


def print_result(result: LoadResult) -> None:
    print(f"\n== {result.target}: {result.clients} clients, {result.wall_s:.1f} s ==")
    lat = result.latencies
    print(f"  answered {len(lat)}, errors {len(result.errors)}, mismatches {len(result.mismatches)}, "
          f"other answer-field differences {result.detail_diffs}")
    print(f"  concurrent latency p50 {percentile(lat, .5):.0f} ms  p95 {percentile(lat, .95):.0f} ms  "
          f"max {max(lat, default=float('nan')):.0f} ms; throughput {result.throughput:.2f} q/s")
    server = [o.server_ms for o in result.observations if o.server_ms is not None]
    if server:
        print(f"  of which server-side (the app's own timing caption): p50 {percentile(server, .5):.0f} ms  "
              f"p95 {percentile(server, .95):.0f} ms")
    paced = [o.paced_ms for o in result.observations if o.paced_ms is not None and o.error is None]
    if paced:
        print(f"  of which deliberate word-by-word streaming (chat.py STREAM_DELAY_S): "
              f"p50 {percentile(paced, .5):.0f} ms")
    seq = result.sequential_ms
    print(f"  baseline ({result.sequential_label}): p50 {percentile(seq, .5):.0f} ms  p95 {percentile(seq, .95):.0f} ms"
          + (f"  → {1000 / (sum(seq) / len(seq)):.2f} q/s" if seq else ""))
    for note in result.notes:
        print(f"  note: {note}")
    print_failures(result)


def print_summary(results: list[LoadResult]) -> None:
    header = (f"{'target':<10} {'clients':>7} {'secs':>6} {'count':>6} {'q/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'seq p50':>8} {'errors':>6} {'mismatch':>8} {'other':>5}  result")
    print("\n" + header)
    print("-" * len(header))
    for r in results:
        lat = r.latencies
        print(f"{r.target:<10} {r.clients:>7} {r.wall_s:>6.1f} {len(r.observations):>6} {r.throughput:>7.2f} "
              f"{percentile(lat, .5):>8.0f} {percentile(lat, .95):>8.0f} {percentile(r.sequential_ms, .5):>8.0f} "
              f"{len(r.errors):>6} {len(r.mismatches):>8} {r.other_failures:>5}  {'ok' if r.passed else 'FAIL'}")
    print("(other: errors or mismatches outside the timed run: cold-cache passes, browser warm-up and baseline)")


def describe_load() -> str:
    load1, load5, _ = os.getloadavg()
    return f"load average {load1:.2f} (1 min) {load5:.2f} (5 min) on {os.cpu_count()} cores"


# ----------------------------------------------------------------------------------------------- main


def run_targets(targets: list[str], *, clients: int, seconds: float, questions: Path, notes_dir: Path,
                browser_items: int, uncached_queries: bool) -> list[LoadResult]:
    from ingest.index import sync_index
    from qa.embeddings import load_embedding_model
    from qa.service import NotesQA

    items = read_items(questions)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        notes, chroma = root / "notes", root / "index"
        shutil.copytree(notes_dir, notes)
        model = load_embedding_model()
        if uncached_queries and not bypass_query_cache(model):
            print("note: this model has no question-vector cache: --uncached-queries changes nothing")
        cache = ("bypassed: every question embedded (in-process targets; the app keeps its own)" if uncached_queries
                 else "on: after the warm-up, repeated eval questions reuse their vectors")
        if hasattr(model, "clear_query_cache"):
            print(f"question-vector cache {cache}")
        settings = make_settings(notes, chroma)
        started = time.perf_counter()
        report = sync_index(settings, model, progress=False)
        print(f"index: {report.summary} (built in {time.perf_counter() - started:.1f} s); "
              f"{len(items)} eval questions ({sum(bool(i.history) for i in items)} with history)", flush=True)
        qa = NotesQA.load(settings, model=model, build_if_missing=False)
        embedded = run_sequential(qa, items) if {"qa", "server"} & set(targets) else None
        for target in targets:
            print(f"running {target}… ({describe_load()})", flush=True)
            if target == "qa":
                results.append(bench_in_process("qa", qa, items, embedded, clients=clients, seconds=seconds))
                cold_notes, cold_failures = compare_cold_passes(settings, spread_items(items, browser_items), embedded,
                                                                clients=clients)
                results[-1].notes += cold_notes + [f"cold pass failure: {f}" for f in cold_failures[:SHOWN_ERRORS]]
                results[-1].cold_failures = len(cold_failures)
            elif target == "server":
                results.append(bench_server(model, notes, root, items, clients=clients, seconds=seconds,
                                            embedded=embedded))
            else:
                results.append(bench_streamlit(qa, notes, chroma, root, items, clients=clients, seconds=seconds,
                                               browser_items=browser_items))
            results[-1].notes.append(f"at the end: {describe_load()}")
            print_result(results[-1])
            sys.stdout.flush()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--target", choices=[*TARGETS, "all"], default=DEFAULT_TARGET)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    parser.add_argument("--browser-items", type=int, default=DEFAULT_BROWSER_ITEMS,
                        help="eval items the streamlit target cycles over (warmed once first)")
    parser.add_argument("--uncached-queries", action="store_true",
                        help="qa/server: embed every question anew, as if never seen (bypass the model's cache)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    targets = list(TARGETS) if args.target == "all" else [args.target]
    print(f"bench.load: targets {', '.join(targets)}; {args.clients} clients x {args.seconds:.0f} s; "
          f"{describe_load()}", flush=True)
    print(describe_code(), flush=True)
    results = run_targets(targets, clients=args.clients, seconds=args.seconds, questions=args.questions,
                          notes_dir=args.notes, browser_items=args.browser_items,
                          uncached_queries=args.uncached_queries)
    print_summary(results)
    ok = all(r.passed for r in results)
    verdict = "no errors, every answer equal to the sequential one" if ok else "see above"
    print(f"\n{'PASS' if ok else 'FAIL'}: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
