"""The corpora the evaluation runs on, where their notes and questions are, and the tune/report split.

The seed notes are the configured notes folder (`NOTES_DIR`, `corpus/` by default) with
`eval/questions.jsonl`; the shared corpora are read where they are (`../shared/corpora/`, or
`NOTESQA_CORPORA`), never copied, each with its question set in `eval/sets/`. Every question set is
split by a fixed seed into a tune half (what `python -m eval.fit` learns from) and a report half (what
the README quotes).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
REPO = EVAL_DIR.parent
SHARED_CORPORA = Path(os.environ.get("NOTESQA_CORPORA", REPO.parent / "shared" / "corpora"))
INDEX_ROOT = REPO / ".chroma-eval"  # one local index per shared corpus (git-ignored, incremental)
SPLIT_SEED = "notes-qa-2026"
HALVES = ("tune", "report")


@dataclass(frozen=True)
class Corpus:
    """One evaluation corpus: its notes folder and question file (`notes_dir` None: the configured one)."""

    name: str
    questions: Path
    notes_dir: Path | None = None
    fitted: bool = True  # False: never fitted on, only evaluated (the held-out SQuAD articles)
    generated: bool = False  # notes and questions written from a dataset on first use (`materialize`)

    @property
    def available(self) -> bool:
        if self.generated:
            from eval.squad import SQUAD_PATH

            return SQUAD_PATH.is_file()
        return self.questions.is_file() and (self.notes_dir is None or self.notes_dir.is_dir())


def materialize(corpus: Corpus) -> Corpus:
    """A generated corpus's notes and questions, written once (deterministic: a fixed seed and split)."""
    if corpus.generated and not corpus.questions.is_file():
        from eval.squad import write_heldout_corpus

        write_heldout_corpus(corpus.notes_dir, corpus.questions)
    return corpus


def corpora() -> dict[str, Corpus]:
    """Every corpus the evaluation knows, seed first."""
    return {
        "seed": Corpus("seed", EVAL_DIR / "questions.jsonl"),
        "og-aws": Corpus("og-aws", EVAL_DIR / "sets" / "og-aws.jsonl", SHARED_CORPORA / "og-aws"),
        "poetry-docs": Corpus("poetry-docs", EVAL_DIR / "sets" / "poetry-docs.jsonl", SHARED_CORPORA / "poetry-docs"),
        # Wikipedia articles of SQuAD v1.1 train that the reader never saw (eval/squad.py), as notes.
        "squad": Corpus("squad", INDEX_ROOT / "squad.jsonl", INDEX_ROOT / "squad-notes", fitted=False, generated=True),
    }


def half_of(item_id: str, *, seed: str = SPLIT_SEED) -> str:
    """'tune' or 'report', fixed for an id (a hash, so adding questions never moves the others)."""
    return HALVES[int(hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest(), 16) % 2]


def open_corpus(corpus: Corpus, settings, model, *, answer_model=None):
    """The pipeline over one corpus; a shared corpus's own index is brought up to date first (it is the
    evaluation's, incremental, and must match the notes and the code being evaluated)."""
    from qa.service import NotesQA

    if corpus.notes_dir is not None:
        from ingest.index import sync_index

        sync_index(settings, model, progress=False)
    return NotesQA.load(settings, model=model, build_if_missing=True, answer_model=answer_model)


def corpus_settings(corpus: Corpus, base=None):
    """Settings to evaluate one corpus: the configured ones for the seed, a local index per shared corpus."""
    from qa.settings import load_settings

    if corpus.notes_dir is None:
        return base or load_settings()
    overrides = {"notes_dir": corpus.notes_dir, "chroma_dir": INDEX_ROOT / corpus.name, "chroma_host": ""}
    return base.model_copy(update=overrides) if base is not None else load_settings(**overrides)
