"""Query benchmark: warm per-question latency vs the floor (embed the question + one Chroma query).

    python -m bench.query [--questions eval/questions.jsonl] [--notes corpus] [--rounds 3]
    python -m bench.query --notes ../shared/corpora/og-aws --questions eval/sets/og-aws.jsonl

First a "new topic" pass: the process is warm (model and index loaded, one unrelated question asked)
but nothing about these questions is in memory (no question vector, no answer unit cut or embedded in
this process): each question's first `ask`. Then warm rounds, where the floor and ours are measured
in the same run over the same questions against the same index; prints p50/p95 of each and the
ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import percentile
from ingest.index import sync_index
from notes.units import units_of
from qa.embeddings import load_embedding_model
from qa.service import NotesQA
from qa.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.query")
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--notes", type=Path, default=Path("corpus"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    items = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        notes = Path(tmp) / "notes"
        shutil.copytree(args.notes, notes)
        settings = Settings(notes_dir=notes, chroma_dir=Path(tmp) / "idx", _env_file=None)
        model = load_embedding_model()
        sync_index(settings, model, progress=False)
        qa = NotesQA.load(settings, model=model, build_if_missing=False)
        qa.ask("warm up the model")
        units_of.cache_clear()
        model.clear_query_cache()
        model._texts.clear()  # passages embedded in this process (the answer units come from ingest)
        first = [qa.ask(item["question"], history=item.get("history")).timings_ms["total"] for item in items]
        print(f"new topic (first ask of each question, process warm): p50 {percentile(first, .5):.1f} ms  "
              f"p95 {percentile(first, .95):.1f} ms")
        floor, ours, keyword = [], [], []
        for _ in range(args.rounds):
            for item in items:
                started = time.perf_counter()
                vector = model.encode_query_uncached(item["question"])  # uncached, like a new question
                qa.index.collection.query(query_embeddings=[vector], n_results=30,
                                          include=["documents", "metadatas", "distances"])
                floor.append((time.perf_counter() - started) * 1000)
                model.clear_query_cache()
                answer = qa.ask(item["question"], history=item.get("history"))
                ours.append(answer.timings_ms["total"])
                keyword.append(answer.retrieval.timings_ms["keyword"])
    print(f"{len(items)} questions x {args.rounds} rounds, warm")
    print(f"floor (embed + 1 Chroma query): p50 {percentile(floor, .5):.1f} ms  p95 {percentile(floor, .95):.1f} ms")
    print(f"ask (retrieve + answer):        p50 {percentile(ours, .5):.1f} ms  p95 {percentile(ours, .95):.1f} ms")
    print(f"keyword search + fusion share:  p50 {percentile(keyword, .5):.2f} ms")
    print(f"ratio p50 ask/floor: {statistics.median(ours) / statistics.median(floor):.2f}x")


if __name__ == "__main__":
    main()
