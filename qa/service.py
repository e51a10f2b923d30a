"""One entry point for every front end: load the model and index once, then answer questions.

The CLI, the Streamlit app and the evaluation all call `NotesQA.ask`, so what the eval measures is
what users get.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import cached_property

from qa.answer import RETRIEVED_FOR_ANSWER, Answer, UnitScorer, compose_answer
from qa.answer_model import load_answer_model
from qa.conversation import MAX_QUESTION_CHARS, clean_history, clean_question, condense_query  # noqa: F401
from qa.reader import load_reader
from qa.embeddings import EmbeddingModel, load_embedding_model
from qa.errors import IndexMissing
from qa.retrieve import DEFAULT_K, Retriever
from qa.settings import Settings, load_settings
from qa.store import NotesIndex, forget_clients, open_index

class NotesQA:
    """The loaded model, index and retriever; `ask` is safe to call from several threads."""

    def __init__(self, settings: Settings, model: EmbeddingModel, index: NotesIndex, *, answer_model=None):
        self.settings = settings
        self.model = model
        self.retriever = Retriever(index, model, cache_dir=settings.keyword_cache, reopen=self._reopen)
        self.scorer = UnitScorer(model)
        # `answer_model`: a decision other than the configured one (python -m eval.fit before there is one).
        self.answer_model = answer_model or load_answer_model(
            str(settings.answer_model) if settings.answer_model else None)
        self.reader = load_reader()
        self.retriever.keyword_weight = self.answer_model.keyword_weight

    @classmethod
    def load(cls, settings: Settings | None = None, *, model: EmbeddingModel | None = None,
             build_if_missing: bool = True, say: Callable[[str], None] | None = None,
             on_progress=None, answer_model=None) -> "NotesQA":
        """Open the index for the configured model, building it first when there is none."""
        settings = settings or load_settings()
        if settings.uses_server:
            from qa.store import check_server

            check_server(settings)
        model = model or load_embedding_model(settings.embed_model, batch_size=settings.embed_batch_size,
                                              cache_dir=settings.model_cache_dir)
        try:
            index = open_index(settings, model=model.name)
            if index.read_state().generation == 0:
                raise IndexMissing(f"The index in the {settings.index_location} is empty.")
        except IndexMissing:
            if not build_if_missing:
                raise
            from ingest.index import sync_index

            (say or (lambda m: print(m, file=sys.stderr)))(
                f"No index yet: building it from {settings.notes_dir} (one time)…")
            sync_index(settings, model, progress=on_progress is None, on_progress=on_progress)
            index = open_index(settings, model=model.name)
        return cls(settings, model, index, answer_model=answer_model)

    @property
    def index(self) -> NotesIndex:
        return self.retriever.index

    def index_state(self):
        """The committed index state, after the same checks a question makes (deleted, replaced, down)."""
        self.retriever.committed_generation()
        return self.index.read_state()

    def _reopen(self, *, fresh: bool = True) -> NotesIndex:
        """The index through a new client: `fresh` rereads the folder from disk (another process wrote it),
        else this process's current client is joined (another part of the process already reread it)."""
        if fresh and not self.settings.uses_server:
            forget_clients()
        return open_index(self.settings, model=self.model.name)

    @cached_property
    def judge(self):
        """The support judge shared with the evaluation (checks LLM sentences against passages)."""
        from qa.judge import SupportJudge

        return SupportJudge(self.model)

    @cached_property
    def chat_model(self):
        """The configured LangChain chat model, or None when `LLM_PROVIDER` is none."""
        from qa.llm import make_chat_model

        return make_chat_model(self.settings)

    def answer(self, question: str, *, history: list[dict] | None = None, mode: str | None = None,
               allow_general: bool = False, on_token: Callable[[str], None] | None = None, chat_model=None,
               **options) -> Answer:
        """Answer in the configured mode: extractive, or LLM (checked, with the extractive fallback).
        `chat_model` uses that LangChain chat model instead of the configured one (an Ollama the app found)."""
        history = clean_history(history)
        use_llm = (mode or ("llm" if self.settings.llm_provider != "none" else "extractive")) == "llm"
        if not use_llm:
            return self.ask(question, history=history, **options)
        from qa.llm import LLMUnavailable, ask_llm

        try:
            chat = chat_model or self.chat_model
        except LLMUnavailable as exc:
            answer = self.ask(question, history=history, **options)
            answer.notice = f"Showing the answer from your notes: {exc}"
            return answer
        if chat is None:
            return self.ask(question, history=history, **options)
        return ask_llm(self, chat, question, history=history, allow_general=allow_general, on_token=on_token,
                       **options)

    def ask(self, question: str, *, history: list[dict] | None = None, k: int = DEFAULT_K,
            source: str | None = None, under: str | None = None, tags: tuple[str, ...] = ()) -> Answer:
        """Answer one question from the notes (extractive), with citations or an abstention."""
        started = time.perf_counter()
        text, notice = clean_question(question)
        history = clean_history(history)
        keyword = self.retriever.keyword_index()  # one snapshot per question: no mixed generations
        query = condense_query(text, history, names=keyword.names)
        # The answer reads as many sections as it needs; `k` is how many the caller lists as retrieved.
        retrieval = self.retriever.search(query, k=max(k, RETRIEVED_FOR_ANSWER), source=source, under=under,
                                          tags=tuple(tags), keyword=keyword)
        t_retrieved = time.perf_counter()
        answer = compose_answer(text, retrieval, self.scorer, model=self.answer_model, reader=self.reader)
        retrieval.sections = retrieval.sections[:k]
        done = time.perf_counter()
        answer.notice = notice
        answer.timings_ms = {"retrieve": (t_retrieved - started) * 1000, "answer": (done - t_retrieved) * 1000,
                             "total": (done - started) * 1000}
        return answer
