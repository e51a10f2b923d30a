"""The terminal side: `python -m qa chat` through a pseudo-terminal, `ask --history`, and a query path without torch."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from conftest import REPO, run_cli

pexpect = pytest.importorskip("pexpect")


def cli_env(settings) -> dict:
    return {"NOTES_DIR": str(settings.notes_dir), "CHROMA_DIR": str(settings.chroma_dir)}


def test_chat_answers_follow_ups_shows_sources_and_starts_over(seed_settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTES_", "CHROMA_", "LLM_"))}
    env.update(cli_env(seed_settings), PYTHONPATH=str(REPO), XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", ""),
               HOME=os.environ.get("HOME", str(tmp_path)))
    child = pexpect.spawn(sys.executable, ["-m", "qa", "chat"], env=env, cwd=str(tmp_path), encoding="utf-8",
                          timeout=120)
    try:
        child.expect(r"Chatting with your notes \(1 note, \d+ sections\)")
        child.expect("> ")
        child.sendline("How long can a Lambda function run?")
        child.expect("900 seconds")
        child.expect("> ")
        child.sendline("/sources")
        child.expect(r"aws-notes\.md#15 — Serverless › Lambda › Lambda Limits")
        child.expect("> ")
        child.sendline("And how much memory can it get?")  # a follow-up: "it" is the Lambda function
        child.expect("128 MB")
        child.expect("> ")
        child.sendline("/clear")
        child.expect(r"\(conversation cleared\)")
        child.sendline("🙂🙂🙂")
        child.expect("I couldn't find a question there")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_ask_with_a_history_file_answers_the_follow_up(seed_settings, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"role": "user", "content": "Tell me about DynamoDB Streams"},
                                   {"role": "assistant", "content": "They record item-level changes."}]))
    done = run_cli("-m", "qa", "ask", "How long does it keep the data?", "--history", str(history), "--json",
                   env=cli_env(seed_settings), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "DynamoDB Streams" in answer["searched_query"] and "24-hour" in answer["answer"]
    history.write_text("{not json")
    bad = run_cli("-m", "qa", "ask", "How long does it keep the data?", "--history", str(history),
                  env=cli_env(seed_settings), cwd=tmp_path)
    assert bad.returncode == 2 and "is not JSON" in bad.stderr and "Traceback" not in bad.stderr


def test_questions_are_answered_without_importing_torch(seed_settings, tmp_path):
    script = ("import sys; from qa.service import NotesQA; from qa.settings import load_settings; "
              "qa = NotesQA.load(load_settings(), build_if_missing=False); "
              "a = qa.ask('How long can a Lambda function run?'); "
              "print(qa.model.backend, 'torch' in sys.modules, 'sentence_transformers' in sys.modules, a.text[:40])")
    done = run_cli("-c", script, env=cli_env(seed_settings), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["onnxruntime", "False", "False"], done.stdout


def test_onnx_vectors_match_sentence_transformers_on_the_eval_texts(model):
    from eval.questions import load_questions

    assert model.backend == "onnxruntime"
    texts = [i.question for i in load_questions()][:60] + ["Maximum execution time: 900 seconds (15 minutes)."]
    onnx = model.encoder.encode(texts)
    torch = np.asarray(model.embeddings.embed_documents(texts))
    assert float((onnx * torch).sum(axis=1).min()) >= 0.9999


def test_an_export_that_disagrees_is_dropped_and_torch_answers(tmp_path, monkeypatch, caplog):
    import qa.onnx
    from qa.embeddings import load_embedding_model

    monkeypatch.setattr(qa.onnx, "MIN_AGREEMENT", 1.5)  # nothing can agree that well
    model = load_embedding_model(cache_dir=tmp_path)
    assert model.backend.startswith("sentence-transformers") and model.encoder is None
    assert "questions use torch instead" in caplog.text
    assert not list((tmp_path / "onnx").glob("*/model.onnx"))
    assert len(model.embed_query("How long can a Lambda function run?")) == 384
