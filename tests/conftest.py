"""Shared fixtures: the real model and a real seed index are built once per session.

Every test starts in an empty temp working directory with no Notes Q&A variables set, so a `.env`
or `.chroma/` in the repository never leaks into a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.processes import free_port, serve  # noqa: F401 (tests import them from here)

REPO = Path(__file__).resolve().parent.parent
SEED_NOTE = REPO / "corpus" / "aws-notes.md"
# Notes by other people, read where they are (never copied into the project): see ../shared/corpora/README.md.
CORPORA = Path(os.environ.get("NOTESQA_CORPORA", REPO.parent / "shared" / "corpora"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_PREFIXES = ("NOTES_", "CHROMA_", "EMBED_", "LLM_", "COLLECTION", "KEYWORD_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No project variables from the outside, and cwd in a temp dir (no repo .env, no repo .chroma)."""
    for key in list(os.environ):
        if key.startswith(_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def make_settings(notes_dir: Path, chroma_dir: Path, **extra):
    from qa.settings import Settings

    return Settings(notes_dir=notes_dir, chroma_dir=chroma_dir, _env_file=None, **extra)


@pytest.fixture(scope="session")
def model():
    """The bundled all-MiniLM-L6-v2, loaded once."""
    from qa.embeddings import load_embedding_model

    return load_embedding_model()


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory) -> Path:
    """A notes folder holding the seed note, byte for byte."""
    notes = tmp_path_factory.mktemp("seed-notes")
    shutil.copyfile(SEED_NOTE, notes / "aws-notes.md")
    return notes


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, seed_dir, model):
    """Settings of a real index of the seed notes, built once (tests must not modify it)."""
    from ingest.index import sync_index

    settings = make_settings(seed_dir, tmp_path_factory.mktemp("seed-index") / ".chroma")
    sync_index(settings, model, progress=False)
    return settings


@pytest.fixture(scope="session")
def notes_qa(seed_settings, model):
    """The question-answering service over the seed index."""
    from qa.service import NotesQA

    return NotesQA.load(seed_settings, model=model, build_if_missing=False)


def corpus_dir(name: str) -> Path:
    """A shared corpus folder (og-aws, poetry-docs), or skip when this machine does not have it."""
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"{path} is missing (the shared corpora live next to the project; NOTESQA_CORPORA moves them)")
    return path


@pytest.fixture(scope="session")
def corpus_qa(tmp_path_factory, model):
    """`corpus_qa(name)`: the question-answering service over a real index of one shared corpus, built once."""
    from ingest.index import sync_index
    from qa.service import NotesQA

    built: dict[str, object] = {}

    def get(name: str):
        if name not in built:
            settings = make_settings(corpus_dir(name), tmp_path_factory.mktemp(f"index-{name}") / ".chroma")
            sync_index(settings, model, progress=False)
            built[name] = NotesQA.load(settings, model=model, build_if_missing=False)
        return built[name]

    return get


@pytest.fixture
def github_notes(tmp_path) -> Path:
    """A private copy of the GitHub-style fixture notes (Kubernetes study notes: a div-centred title, a
    `<details>` table of contents, inline code in headings, `--flags` in commands)."""
    notes = tmp_path / "github-notes"
    shutil.copytree(FIXTURES / "github", notes)
    return notes


@pytest.fixture(scope="session")
def github_settings(tmp_path_factory, model):
    """Settings of a real index of the GitHub-style fixture notes, built once (tests must not modify it)."""
    from ingest.index import sync_index

    notes = tmp_path_factory.mktemp("github-notes")
    shutil.copytree(FIXTURES / "github", notes, dirs_exist_ok=True)
    settings = make_settings(notes, tmp_path_factory.mktemp("github-index") / ".chroma")
    sync_index(settings, model, progress=False)
    return settings


@pytest.fixture
def fresh_index(tmp_path, model):
    """A private copy of the seed notes and an empty index location, for tests that change things."""
    notes = tmp_path / "notes"
    notes.mkdir()
    shutil.copyfile(SEED_NOTE, notes / "aws-notes.md")
    return make_settings(notes, tmp_path / ".chroma")


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A private copy of the bundled notes (corpus/), for tests that edit notes (corpus/ itself is never edited)."""
    notes = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", notes)
    return notes


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on a free loopback port: yields (host, port, process)."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    command = [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    with serve(command, port, path.parent / f"chroma-{port}.log") as proc:
        yield "127.0.0.1", port, proc


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m …` from the repo code in a subprocess, with only the given project variables."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], env=full_env, input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
