"""The app in a real browser: Debian's headless Chromium, driven by Playwright, against `streamlit run`.

Screenshots go to each test's tmp dir. With UPDATE_SCREENSHOT=1 the chat screenshot is also copied to
docs/screenshot.png (the README's picture), so normal test runs never write into the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import CORPORA, FIXTURES, REPO, free_port, make_settings, serve

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
expect = sync_api.expect

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EVIL_NOTE = """# Evil note

<script>window.__pwned=1</script>

A line with <img src=x onerror="window.__pwned=2"> an image and a [link](javascript:window.__pwned=3).

## Deep section

Nothing else to see here: <iframe src="javascript:window.__pwned=4"></iframe>
"""
GITHUB_NOTE = "kubernetes-notes.md"
START_TIMEOUT_MS = 120_000
APP_NOTES: dict[str, Path] = {}  # the notes folder of each app the fixture started
ANSWER_TIMEOUT_MS = 60_000


def copy_seed(root: Path, seed_settings) -> tuple[Path, Path]:
    """The session's seed notes and index, copied under `root` (an app under test may change its own copy)."""
    notes, chroma = root / "notes", root / ".chroma"
    shutil.copytree(seed_settings.notes_dir, notes)
    shutil.copytree(seed_settings.chroma_dir, chroma)
    return notes, chroma


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, seed_settings, model):
    """`streamlit run app.py` on a free loopback port, over a copy of the seed index plus a note with <script>."""
    from ingest.index import sync_index

    root = tmp_path_factory.mktemp("browser-app")
    notes, chroma = copy_seed(root, seed_settings)
    (notes / "evil.md").write_text(EVIL_NOTE, encoding="utf-8")
    for vault_note in (FIXTURES / "obsidian").glob("*.md"):  # an Obsidian vault's notes
        shutil.copyfile(vault_note, notes / vault_note.name)
    shutil.copyfile(FIXTURES / "github" / GITHUB_NOTE, notes / GITHUB_NOTE)  # a README-style note from GitHub
    if (CORPORA / "poetry-docs").is_dir():  # a Hugo page with front matter and shortcodes
        shutil.copyfile(CORPORA / "poetry-docs" / "managing-environments.md", notes / "managing-environments.md")
    sync_index(make_settings(notes, chroma), model, progress=False)  # indexes the added notes only

    port = free_port()
    with serve(streamlit_command(port), port, root / "streamlit.log", cwd=REPO, env=app_env(notes, chroma)):
        APP_NOTES[f"http://127.0.0.1:{port}"] = notes
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context
    context.close()


def save_screenshot(path: Path, name: str) -> None:
    """With UPDATE_SCREENSHOT=1, a test's screenshot also becomes the README's docs/<name>."""
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / name)


def streamlit_command(port: int) -> list[str]:
    """`streamlit run app.py` with scripts/run.sh's flags."""
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
            "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]


def app_env(notes: Path, chroma: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "EMBED_", "LLM_"))}
    env.update(NOTES_DIR=str(notes), CHROMA_DIR=str(chroma), CHROMA_HOST="", LLM_PROVIDER="none",
               PYTHONPATH=str(REPO), APP_DB=str(chroma.parent / "app.sqlite3"))
    return env


def open_chat(page, url: str):
    page.goto(url)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=START_TIMEOUT_MS)  # first load: model and index
    return box


def ask(page, box, question: str, expected: str):
    box.fill(question)
    box.press("Enter")
    reply = page.get_by_test_id("stChatMessage").filter(has_text=expected).last
    expect(reply).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(reply.get_by_text("What was searched")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)  # done streaming
    wait_idle(page)
    return reply


def wait_idle(page):
    """Until the script run is over (the toolbar is drawn last; the "running" widget goes away)."""
    expect(page.get_by_role("button", name="New chat")).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_ask_see_citation_click_it_and_land_on_the_heading(app_url, context, tmp_path):
    page = context.new_page()
    box = open_chat(page, app_url)
    reply = ask(page, box, "How long can a Lambda function run?", "900 seconds")

    marker = reply.locator("a", has_text="[1]").first
    expect(marker).to_be_visible()
    assert query(marker.get_attribute("href")) | {"quote": ""} == {"note": "aws-notes.md", "anchor": "15", "quote": ""}
    reply.get_by_text("Sources (").click()
    expect(reply.get_by_text("Serverless › Lambda › Lambda Limits").first).to_be_visible()
    expect(reply.get_by_text("Open here in Notes").first).to_be_visible()
    page.wait_for_timeout(500)  # let the expander finish opening
    page.screenshot(path=tmp_path / "chat.png")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "chat.png", REPO / "docs" / "screenshot.png")

    # The [1] marker opens the Notes page (a new tab, so the chat stays) at the cited heading.
    with context.expect_page() as opened:
        marker.click()
    notes = opened.value
    heading = notes.locator('[id="15"]')
    expect(heading).to_be_visible(timeout=START_TIMEOUT_MS)
    expect(heading).to_contain_text("Lambda Limits")
    assert urlparse(notes.url).path == "/notes"
    assert query(notes.url)["note"] == "aws-notes.md" and query(notes.url)["anchor"] == "15"
    expect(heading).to_be_in_viewport(timeout=10_000)
    expect(notes.get_by_text("Maximum execution time: 900 seconds (15 minutes).")).to_be_in_viewport()
    notes.screenshot(path=tmp_path / "notes-at-citation.png")

    # "Open here in Notes" navigates in the same tab, also landing on the heading.
    reply.get_by_text("Open here in Notes").first.click()
    page.wait_for_url(re.compile(r"/notes\?.*anchor=15"), timeout=30_000)
    expect(page.locator('[id="15"]')).to_be_in_viewport(timeout=30_000)
    page.screenshot(path=tmp_path / "notes-same-tab.png")

    # Back on Ask, the conversation is still there (same session).
    page.get_by_test_id("stSidebarNav").get_by_text("Ask", exact=True).click()
    expect(page.get_by_test_id("stChatMessage").filter(has_text="900 seconds")).to_be_visible(timeout=30_000)


def test_script_in_a_note_or_question_never_runs(app_url, context, tmp_path):
    page = context.new_page()
    page.goto(f"{app_url}/notes?note=evil.md")
    expect(page.locator('[id="evil-note"]')).to_be_visible(timeout=START_TIMEOUT_MS)
    expect(page.get_by_text("A line with")).to_be_visible()
    expect(page.get_by_text("window.__pwned")).to_have_count(0)  # a script is left out, never run
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert not page.evaluate("[...document.querySelectorAll('script, iframe, img')]"
                             ".some(e => (e.outerHTML || '').includes('__pwned'))")
    page.screenshot(path=tmp_path / "evil-note.png")

    page.get_by_test_id("stSidebarNav").get_by_text("Ask", exact=True).click()
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=START_TIMEOUT_MS)
    box.fill('<img src=x onerror="window.__pwned=5"> How long can a Lambda function run?')
    box.press("Enter")
    # shown as text in the question (and in "Query searched" once the answer is drawn)
    expect(page.get_by_text('<img src=x onerror="window.__pwned=5">', exact=False).first).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None


@pytest.mark.parametrize("note, anchor, quote, title", [
    ("managing-environments.md", "managing-environments",
     "But if it's not, it will use\none that it has already created or create a brand new one for you.",
     "Managing environments"),
    ("Serverless functions.md", "limits",
     "A function invocation can run for at most fifteen minutes, after which the platform stops it\n> and reports "
     "a timeout error.", "Serverless functions"),
])
def test_notes_page_shows_the_note_as_its_author_does_and_highlights_the_quote(app_url, context, tmp_path, note,
                                                                                 anchor, quote, title):
    from ui.links import note_url

    if not (REPO.parent / "shared").exists() and note == "managing-environments.md":
        pytest.skip("the shared corpora are not on this machine")
    page = context.new_page()
    page.goto(f"{app_url}/{note_url(note, anchor, quote)}")
    expect(page.locator(f'[id="{anchor}"]')).to_be_visible(timeout=START_TIMEOUT_MS)
    words = " ".join(quote.replace("\n>", " ").split())
    marked = page.get_by_test_id("stMain").locator("mark")  # the highlight, line by line
    expect(marked.first).to_be_in_viewport(timeout=10_000)
    shown = " ".join(" ".join(marked.all_inner_texts()).split())
    assert shown == words
    expect(page.get_by_text(title, exact=False).first).to_be_visible()
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "{{%" not in body and "[!note]" not in body and "%%" not in body and "title:" not in body
    page.screenshot(path=tmp_path / f"{anchor}.png", full_page=False)
    if note == "Serverless functions.md":
        expect(page.get_by_text("Timeout", exact=True)).to_be_visible()  # the callout's title
        link = page.get_by_role("link", name="keeping functions warm")
        assert query(link.get_attribute("href")) == {"note": "Cold starts.md", "anchor": "provisioned-concurrency"}


def test_a_long_paste_the_scores_table_and_a_reload(app_url, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        page = context.new_page()
        box = open_chat(page, app_url)
        box.fill("What is the longest a Lambda function can run? " * 60)  # 2,880 characters, as a paste would
        box.press("Enter")
        reply = page.get_by_test_id("stChatMessage").filter(has_text="trimmed to its first 2000 characters").last
        expect(reply).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        wait_idle(page)

        reply.get_by_text("What was searched").click()
        table = reply.get_by_test_id("stDataFrame")
        expect(table).to_be_visible(timeout=10_000)
        page.wait_for_timeout(500)
        # The grid is drawn on a canvas: every column fits when its scroller has nothing to scroll sideways.
        overflow = table.evaluate("t => { const s = t.querySelector('.dvn-scroller') || t; "
                                  "return s.scrollWidth - s.clientWidth; }")
        assert overflow <= 1, f"the scores table is {overflow}px too wide: its last column (Fused) is cut off"
        page.screenshot(path=tmp_path / "scores-1300.png")

        assert "c=" in page.url  # the conversation's address
        page.reload()
        expect(page.get_by_test_id("stChatMessage").filter(has_text="trimmed to its first 2000").last).to_be_visible(
            timeout=START_TIMEOUT_MS)
        page.screenshot(path=tmp_path / "after-reload.png")
    finally:
        context.close()


def test_a_github_readme_reads_on_the_notes_page_as_on_github(app_url, context, tmp_path):
    page = context.new_page()
    page.goto(f"{app_url}/notes?note={GITHUB_NOTE}")
    main = page.get_by_test_id("stMain")
    expect(page.locator('[id="kubernetes-study-notes"]')).to_be_visible(timeout=START_TIMEOUT_MS)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)  # drawn in full
    page.wait_for_timeout(1000)
    page.screenshot(path=tmp_path / "github-note.png")
    save_screenshot(tmp_path / "github-note.png", "notes-github.png")
    text = main.inner_text()
    # 1. no HTML as text, no table of contents of HTML links at the top, pictures as their alt text
    for raw in ("<div", "</div>", "<details", "<summary", "<ol>", "<li>", "<img", "<kbd>", "Table of Contents"):
        assert raw not in text, raw
    expect(main.get_by_text("[image: Kubernetes logo]")).to_be_visible()
    expect(main.locator("kbd", has_text="Ctrl")).to_be_visible()
    fold = main.locator("details", has_text="Why did my rollout hang?")
    expect(fold).to_be_visible()
    fold.locator("summary").click()
    expect(fold.get_by_text("readiness probe")).to_be_visible()
    # 2. inline code in headings and in the Contents is code, no backticks
    heading = page.locator('[id="-valuesreplicacount-"]')
    expect(heading.locator("code")).to_have_text("{{ .Values.replicaCount }}")
    assert "`" not in heading.inner_text()
    contents = main.get_by_test_id("stExpander").filter(has_text="Contents")
    expect(contents.locator("a code", has_text="{{ .Values.replicaCount }}")).to_be_visible()
    expect(contents.locator("a code", has_text="kubectl")).to_be_visible()
    # 3. flags as written, in prose and in code
    assert "add --dry-run=client -o yaml to kubectl create" in text
    assert "everything after -- is passed to the container" in text and "—" not in text
    expect(main.locator("code", has_text="kubectl exec -it web -- /bin/sh")).to_be_visible()


def test_an_answer_keeps_a_commands_flags(app_url, context):
    page = context.new_page()
    box = open_chat(page, app_url)
    reply = ask(page, box, "How do I print a manifest without creating anything?", "--dry-run=client")
    shown = reply.inner_text()
    assert "--dry-run=client -o yaml" in shown and "—" not in shown.split("What was searched")[0]
    assert page.evaluate("window.__pwned") is None


def test_a_first_start_shows_the_chat_box_at_once_and_builds_the_index_in_the_background(context, tmp_path):
    import time

    notes, chroma = tmp_path / "notes", tmp_path / ".chroma"
    shutil.copytree(REPO / "corpus", notes)  # the bundled notes, no index yet
    port = free_port()
    with serve(streamlit_command(port), port, tmp_path / "streamlit.log", cwd=REPO, env=app_env(notes, chroma)):
        page = context.new_page()
        started = time.monotonic()
        page.goto(f"http://127.0.0.1:{port}")
        box = page.get_by_test_id("stChatInputTextArea")
        expect(box).to_be_enabled(timeout=START_TIMEOUT_MS)
        usable = time.monotonic() - started
        expect(page.get_by_test_id("stProgress")).to_be_visible()
        expect(page.get_by_role("button", name="Tell me about")).to_have_count(3)  # from the notes' headings
        page.screenshot(path=tmp_path / "first-start.png")
        save_screenshot(tmp_path / "first-start.png", "first-start.png")
        assert usable < 15, f"the chat box took {usable:.1f} s"  # 29 s before (model load and indexing first)
        print(f"chat box usable after {usable:.1f} s")

        box.fill("How long can a Lambda function run?")  # asked while the index is being built
        box.press("Enter")
        reply = page.get_by_test_id("stChatMessage").filter(has_text="900 seconds").last
        expect(reply).to_be_visible(timeout=START_TIMEOUT_MS)
        print(f"first answer after {time.monotonic() - started:.1f} s")
        expect(page.get_by_test_id("stProgress")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)


@pytest.fixture(scope="module")
def study_app(tmp_path_factory, seed_settings, model):
    """`streamlit run app.py` over a copy of the seed notes and index, with its own APP_DB: yields (url, APP_DB)."""
    from ingest.index import sync_index

    root = tmp_path_factory.mktemp("study-app")
    notes, chroma = copy_seed(root, seed_settings)
    sync_index(make_settings(notes, chroma), model, progress=False)  # the copy's own folder (nothing to embed)
    port = free_port()
    with serve(streamlit_command(port), port, root / "streamlit.log", cwd=REPO, env=app_env(notes, chroma)):
        yield f"http://127.0.0.1:{port}", root / "app.sqlite3"


def prompt_text(card) -> str:
    """Words of a card's prompt that are on the page before it is checked (the text before or after the blank)."""
    from study.cards import BLANK

    before, after = card.prompt.split(BLANK)
    return before.strip() or after.strip()


def test_study_a_card_check_it_see_its_passage_rate_it_good_and_get_the_next(study_app, browser, tmp_path):
    import sqlite3

    from study.deck import study_queue
    from study.store import StudyStore

    url, db = study_app
    context = browser.new_context(viewport={"width": 1280, "height": 1060})  # tall enough for the ratings
    try:
        page = context.new_page()
        page.goto(f"{url}/study")
        main = page.get_by_test_id("stMain")
        box = main.get_by_label("Your answer")
        expect(box).to_be_visible(timeout=START_TIMEOUT_MS)
        card = study_queue(StudyStore(db)).cards[0].card  # the first card of a fresh APP_DB, as the page asks it
        prompt = main.locator("p", has_text=prompt_text(card))
        expect(prompt).to_be_visible()

        box.fill(card.answer)
        main.get_by_role("button", name="Check").click()
        expect(main.get_by_text("Right.", exact=True)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        passage = main.get_by_role("link", name=card.heading, exact=True)
        expect(passage).to_be_visible()
        link = query(passage.get_attribute("href"))
        assert (link["note"], link["anchor"]) == (card.source, card.anchor) and link["quote"] in card.quote
        expect(main.get_by_role("link", name="Open here in Notes")).to_be_visible()
        expect(main.locator("mark", has_text=card.answer).first).to_be_visible()  # the answer, in the passage
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)
        page.mouse.move(5, 5)
        page.wait_for_timeout(300)
        page.screenshot(path=tmp_path / "study.png")
        save_screenshot(tmp_path / "study.png", "study.png")

        main.get_by_role("button", name="Good", exact=True).click()
        expect(main.get_by_text("Good: this card comes back in 10 minutes.")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        expect(main.get_by_text("Right.", exact=True)).to_have_count(0)
        expect(box).to_have_value("")
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT card, rating FROM study_reviews").fetchall() == [(card.id, 3)]
        following = study_queue(StudyStore(db)).cards[0].card
        assert following.id != card.id
        expect(main.locator("p", has_text=prompt_text(following))).to_be_visible()
        page.screenshot(path=tmp_path / "study-next.png")
    finally:
        context.close()


def test_the_notes_changed_line_appears_on_an_idle_page(app_url, context):
    """Last in this file: it changes a note of the shared app."""
    page = context.new_page()
    open_chat(page, app_url)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=ANSWER_TIMEOUT_MS)  # the run is over
    expect(page.get_by_text("Your notes changed on disk")).to_have_count(0)
    note = APP_NOTES[app_url] / GITHUB_NOTE
    note.write_text(note.read_text(encoding="utf-8") + "\n## Jobs\n\nA Job runs Pods to completion.\n",
                    encoding="utf-8")
    # no click, no key: the page is idle
    expect(page.get_by_text("Your notes changed on disk")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name="Re-index now")).to_be_visible()
