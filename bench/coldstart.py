"""Cold-start benchmark: the one-shot CLI, and seconds from launching `streamlit run app.py` to the first
answer in a browser.

    python -m bench.coldstart [--repeat 3] [--question "How long can a Lambda function run?"] [--no-missing]

First `python -m qa ask` on an existing index of the seed notes, wall clock, next to the floor
`python -c "import torch"` measured in the same run (the query path must not need torch at all).

Builds an index of the seed notes (corpus/) once, then per run starts the app on a free loopback port over
a fresh temp copy of it (as left by `python -m ingest`: no keyword cache yet) and, from an already running
headless Chromium (a new context each run), polls until the page answers, waits for the chat input to be
enabled, asks one question and waits until the answer is drawn in full. Prints, since the launch: the
server port open, the page rendered (chat input usable: model loaded, index opened, warm-up question
answered), the first answer visible; the median of --repeat runs. Then the same with no index at all
(the app builds it on first start), unless --no-missing. The OS file cache is warm (this process and
earlier runs read the same model files), so these are restarts of an installed app, not a cold boot.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.load import (CHROMIUM, CHROMIUM_ARGS, DEFAULT_NOTES, IDLE_APP, NOT_IN_NOTES, REPO, SERVER_TIME, app_env,
                        describe_code, describe_load, exit_on_sigterm, make_settings, streamlit_command)
from bench.processes import free_port, run_process, wait_for_port

DEFAULT_REPEAT = 3
DEFAULT_QUESTION = "How long can a Lambda function run?"
DEFAULT_EXPECTED = "900 seconds"
START_TIMEOUT_S = 300.0
PAGE_TIMEOUT_MS = 300_000
ANSWER_TIMEOUT_MS = 120_000
LOG_TAIL_LINES = 15


@dataclass
class ColdStart:
    """One launch: seconds since `Popen` for each milestone, and the answer shown."""

    port_s: float
    rendered_s: float
    answer_s: float
    answer: str
    server_ms: float | None  # the app's own timing of that first answer

    @property
    def ask_s(self) -> float:
        return self.answer_s - self.rendered_s


@dataclass
class Scenario:
    """The runs of one starting point (an existing index, or none)."""

    name: str
    runs: list[ColdStart]

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.runs)

    def median_server_ms(self) -> float | None:
        known = [r.server_ms for r in self.runs if r.server_ms is not None]
        return statistics.median(known) if known else None


def build_seed_index(notes_dir: Path, root: Path) -> tuple[Path, Path]:
    """A notes copy and its index, built once in this process; returns (notes, index)."""
    from ingest.index import sync_index
    from qa.embeddings import load_embedding_model

    notes, chroma = root / "notes", root / "seed-index"
    shutil.copytree(notes_dir, notes)
    sync_index(make_settings(notes, chroma), load_embedding_model(), progress=False)
    return notes, chroma


def measure_start(browser, notes: Path, chroma: Path, log_path: Path, *, question: str,
                  expected: str | None) -> ColdStart:
    """Launch the app over `chroma`, then time the port, the usable chat and the first answer."""
    from playwright.sync_api import expect

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launched = time.perf_counter()
    with run_process(streamlit_command(port), log_path, cwd=REPO, env=app_env(notes, chroma)) as proc:
        wait_for_port(port, timeout=START_TIMEOUT_S, proc=proc)
        port_s = time.perf_counter() - launched
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(url, timeout=PAGE_TIMEOUT_MS)
            box = page.get_by_test_id("stChatInputTextArea")
            expect(box).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
            rendered_s = time.perf_counter() - launched
            expect(page.locator(IDLE_APP)).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
            box.fill(question)
            box.press("Enter")
            reply = page.get_by_test_id("stChatMessage").nth(1)
            expect(reply.get_by_text("What was searched").or_(reply.get_by_test_id("stAlert")).first
                   ).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
            answer_s = time.perf_counter() - launched
            answer = " ".join(reply.get_by_test_id("stMarkdownContainer").first.inner_text().split())
            expect(page.locator(IDLE_APP)).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)  # caption drawn last
            server_ms = read_server_ms(reply)
        finally:
            context.close()
    if expected and expected not in answer:
        raise AssertionError(f"the first answer does not mention {expected!r}: {answer[:200]!r}")
    return ColdStart(port_s, rendered_s, answer_s, answer, server_ms)


def read_server_ms(reply) -> float | None:
    """The "Answered in … ms on the server" caption of a reply (inside a collapsed expander)."""
    caption = reply.get_by_text(SERVER_TIME)
    match = re.search(r"[\d.]+", caption.first.text_content() or "") if caption.count() else None
    return float(match.group(0)) if match else None


def run_scenario(name: str, browser, notes: Path, seed_index: Path | None, root: Path, *, repeat: int,
                 question: str, expected: str | None) -> Scenario:
    """`repeat` launches, each over a fresh copy of `seed_index` (or over no index at all)."""
    runs = []
    for n in range(repeat):
        run_dir = root / f"{name.replace(' ', '-')}-{n}"
        run_dir.mkdir()
        chroma = run_dir / "index"
        if seed_index is not None:
            shutil.copytree(seed_index, chroma)
        log_path = run_dir / "streamlit.log"
        try:
            run = measure_start(browser, notes, chroma, log_path, question=question, expected=expected)
        except Exception:
            print_log_tail(log_path)
            raise
        print(f"  {name} run {n + 1}: port {run.port_s:.1f} s, page {run.rendered_s:.1f} s, "
              f"answer {run.answer_s:.1f} s (server-side {fmt_ms(run.server_ms)}); {describe_load()}", flush=True)
        runs.append(run)
    return Scenario(name, runs)


def fmt_ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} ms"


def print_log_tail(log_path: Path) -> None:
    if log_path.exists():
        lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        print("  streamlit log (tail):\n    " + "\n    ".join(lines), file=sys.stderr)


def print_summary(scenarios: list[Scenario], question: str) -> None:
    print(f"\nmedians (s since `streamlit run`), first question {question!r}:")
    header = (f"{'scenario':<16} {'runs':>4} {'port open':>10} {'page ready':>11} {'1st answer':>11} "
              f"{'(ask→answer)':>13} {'(server-side)':>14}")
    print(header)
    print("-" * len(header))
    for s in scenarios:
        print(f"{s.name:<16} {len(s.runs):>4} {s.median('port_s'):>10.1f} {s.median('rendered_s'):>11.1f} "
              f"{s.median('answer_s'):>11.1f} {s.median('ask_s'):>13.1f} {fmt_ms(s.median_server_ms()):>14}")
    first = scenarios[0].runs[0].answer
    print(f"\nfirst answer shown: {first[:160]!r}" + ("" if not first.startswith(NOT_IN_NOTES) else " (abstained)"))


def one_shot_cli(notes: Path, index: Path, question: str, repeat: int) -> None:
    """`python -m qa ask` on an existing index, wall seconds, next to `python -c "import torch"` (medians)."""
    import os
    import subprocess

    env = {**os.environ, "NOTES_DIR": str(notes), "CHROMA_DIR": str(index), "PYTHONPATH": str(REPO)}

    def wall(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True)
        return time.perf_counter() - started

    ask = [wall([sys.executable, "-m", "qa", "ask", question]) for _ in range(repeat)]
    torch = [wall([sys.executable, "-c", "import torch"]) for _ in range(repeat)]
    cli, floor = statistics.median(ask), statistics.median(torch)
    print(f"one-shot CLI `qa ask`: {cli:.2f} s   `python -c \"import torch\"`: {floor:.2f} s   "
          f"ratio {cli / floor:.2f}  (medians of {repeat})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument("--expect", default=DEFAULT_EXPECTED,
                        help="text the first answer must contain (empty: any answer)")
    parser.add_argument("--notes", type=Path, default=DEFAULT_NOTES)
    parser.add_argument("--no-missing", dest="missing", action="store_false",
                        help="skip the runs with no index (built by the app on first start)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    from playwright.sync_api import sync_playwright

    print(f"bench.coldstart: {args.repeat} runs per scenario; {describe_load()}", flush=True)
    print(describe_code(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        root = Path(tmp)
        notes, seed_index = build_seed_index(args.notes, root)
        one_shot_cli(notes, seed_index, args.question, args.repeat)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                options = dict(repeat=args.repeat, question=args.question, expected=args.expect or None)
                scenarios = [run_scenario("existing index", browser, notes, seed_index, root, **options)]
                if args.missing:
                    scenarios.append(run_scenario("missing index", browser, notes, None, root, **options))
            finally:
                browser.close()
    print_summary(scenarios, args.question)
    return 0


if __name__ == "__main__":
    sys.exit(main())
