"""Run the evaluation set through the real pipeline (`NotesQA.ask`) and score every item.

`run_eval(qa, items)` is what both `python -m eval` and the CI test call, so the test reuses the
session's loaded model and index instead of starting another process.

Example:
    >>> from eval.questions import AnchorIndex, load_questions
    >>> items = load_questions(anchors=AnchorIndex.from_notes_dir(qa.settings.notes_dir))
    >>> result = run_eval(qa, items)
    >>> result["metrics"]["recall@5"]
    0.96...
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from eval.judge import SupportJudge, load_calibration
from notes.blocks import plain_text
from eval.metrics import (Claim, citation_scores, correct_refusal_rate, false_refusal_rate, grounding,
                          key_facts_found, mean, ndcg_at_k, percentile, recall_at_k, reciprocal_rank)
from eval.corpora import HALVES, half_of
from eval.questions import TYPES, EvalItem

EVAL_DIR = Path(__file__).resolve().parent
GATE_PATH = EVAL_DIR / "thresholds.json"
RETRIEVAL_DEPTH = 10  # sections asked for, so MRR@10 and nDCG@10 see ten (the answer uses the first few)
RECALL_KS = (1, 3, 5)

# name → (what it measures, "higher"/"lower" is better, target from the issue or None)
METRICS: dict[str, tuple[str, str, float | None]] = {
    "recall@1": ("share of reference sections ranked first", "higher", None),
    "recall@3": ("share of reference sections in the top 3", "higher", None),
    "recall@5": ("share of reference sections in the top 5", "higher", 0.95),
    "mrr@10": ("mean reciprocal rank of the first reference section (top 10)", "higher", None),
    "ndcg@10": ("nDCG of the top 10 sections, binary relevance", "higher", None),
    "key_fact_recall": ("share of key facts present in the answer (answerable items)", "higher", 0.90),
    "grounding": ("share of answer sentences supported by the section they cite", "higher", 0.95),
    "citation_recall": ("ALCE citation recall, mean per answer", "higher", None),
    "citation_precision": ("ALCE citation precision, mean per answer", "higher", 0.90),
    "first_citation_right": ("share of answered answerable items whose first citation is a reference section",
                             "higher", 0.92),
    "top_section_facts": ("share of key facts in the top-ranked section (what a search-only tool shows)", "higher",
                          None),
    "top3_section_facts": ("share of key facts in the top three sections", "higher", None),
    "correct_refusal": ("share of unanswerable items refused", "higher", 0.85),
    "near_topic_refusal": ("share of near-topic unanswerable items refused", "higher", 0.85),
    "false_refusal": ("share of answerable items refused", "lower", 0.05),
    "follow_up": ("share of follow-ups handled: answered with a key fact, or refused when unanswerable", "higher",
                  0.90),
    "latency_p50_ms": ("median time of one `ask` (ms)", "lower", None),
    "latency_p95_ms": ("95th percentile time of one `ask` (ms)", "lower", None),
}
COUNTS = ("items", "answerable", "unanswerable", "answered", "sentences", "citations")

_MARKER = re.compile(r"\[(\d+)\]")


def claims_of(answer) -> list[Claim]:
    """The answer's sentences with their citation numbers (the `citation` field and any [n] in the text)."""
    claims = []
    for s in answer.sentences:
        numbers = [int(n) for n in _MARKER.findall(s.text)]
        if s.citation is not None:
            numbers.insert(0, int(s.citation))
        claims.append(Claim(s.text, tuple(dict.fromkeys(numbers))))
    return claims


def cited_passages(qa, answer) -> dict[int, str]:
    """Citation number → the text of the cited section, preceded by its heading path.

    The section comes from the retrieval (what the answer was built from), else from the index's
    sections, else only the quote is known.
    """
    hits = {(s.source, s.anchor): s.text for s in (answer.retrieval.sections if answer.retrieval else [])}
    indexed = None
    passages = {}
    for c in answer.citations:
        text = hits.get((c.source, c.anchor))
        if text is None:
            if indexed is None:
                try:
                    indexed = qa.retriever.keyword_index().sections
                except Exception:  # an index that cannot be read: fall back to the quote
                    indexed = {}
            text = indexed.get((c.source, c.anchor))
        body = text if text and c.quote in text else "\n".join(t for t in (text, c.quote) if t)
        passages[c.n] = " › ".join(c.heading_path) + "\n" + body
    return passages


def evaluate_item(qa, item: EvalItem, judge: SupportJudge, *, k: int = RETRIEVAL_DEPTH) -> dict:
    """Ask one question through the pipeline and score the answer: a JSON-ready record."""
    started = time.perf_counter()
    answer = qa.answer(item.question, history=list(item.history), k=k)  # the configured mode, as users get it
    latency = (time.perf_counter() - started) * 1000
    hits = answer.retrieval.sections if answer.retrieval else []
    ranked = [s.url for s in hits]
    record: dict = {
        "id": item.id, "half": half_of(item.id), "near_topic": item.near_topic,
        "type": item.type, "question": item.question, "answerable": item.answerable,
        "history": list(item.history), "expected": list(item.references), "line": item.line,
        "answer": answer.text, "abstained": bool(answer.abstained),
        "reason": answer.decision.reason if answer.decision else None,
        "searched_query": answer.searched_query, "retrieved": ranked,
        "citations": [{"n": c.n, "url": c.url, "quote": c.quote} for c in answer.citations],
        "latency_ms": round(latency, 2), "timings_ms": {k_: round(v, 2) for k_, v in answer.timings_ms.items()},
    }
    scores: dict = {}
    if item.references:
        first = next((i for i, url in enumerate(ranked, start=1) if url in item.references), None)
        record["first_relevant_rank"] = first
        for cut in RECALL_KS:
            scores[f"recall@{cut}"] = recall_at_k(ranked, item.references, cut)
        scores["mrr@10"] = reciprocal_rank(ranked, item.references, 10)
        scores["ndcg@10"] = ndcg_at_k(ranked, item.references, 10)
    if item.answerable and item.key_facts:
        found = key_facts_found("" if answer.abstained else answer.text, item.key_facts)
        scores["key_fact_recall"] = sum(found) / len(found)
        record["missing_facts"] = [list(f) for f, ok in zip(item.key_facts, found) if not ok]
        for name, sections in (("top_section_facts", hits[:1]), ("top3_section_facts", hits[:3])):
            shown = "\n".join(f"{s.breadcrumb}\n{plain_text(s.text)}" for s in sections)
            in_sections = key_facts_found(shown, item.key_facts)
            scores[name] = sum(in_sections) / len(in_sections)
    if item.answerable and not answer.abstained and answer.citations and item.references:
        scores["first_citation_right"] = float(answer.citations[0].url in item.references)
    if item.type == "follow-up":
        scores["follow_up"] = float(answer.abstained if not item.answerable else
                                    not answer.abstained and scores.get("key_fact_recall", 1.0) > 0)
    sentences = []
    if not answer.abstained:
        claims = claims_of(answer)
        passages = cited_passages(qa, answer)
        verdicts = {}

        def supports(text: str, passage: str) -> bool:
            key = (text, passage)
            if key not in verdicts:
                verdicts[key] = judge.verdict(text, passage)
            return verdicts[key].supported

        grounded = grounding(claims, passages, supports)
        cites = citation_scores(claims, passages, supports)
        for claim, ok in zip(claims, grounded):
            joined = "\n\n".join(passages[n] for n in claim.citations if n in passages)
            v = verdicts.get((claim.text, joined)) if joined else None
            sentences.append({
                "text": claim.text, "citations": list(claim.citations), "supported": ok,
                "similarity": None if v is None else round(v.similarity, 4),
                "content_share": None if v is None else round(v.content_share, 4),
                "missing": [] if v is None else v.missing,
            })
        scores["citation_recall"] = cites.recall
        scores["citation_precision"] = cites.precision
        record["citation_counts"] = {"citations": cites.citations, "relevant": cites.relevant_citations}
    record["sentences"] = sentences
    record["scores"] = scores
    record["failures"] = item_failures(record)
    return record


def item_failures(record: dict) -> list[str]:
    """Why an item counts as failing (empty when it passes every check)."""
    out = []
    if not record["answerable"]:
        if not record["abstained"]:
            out.append("answered a question the notes do not cover")
    else:
        if record["abstained"]:
            out.append(f"refused an answerable question ({record.get('reason') or 'abstained'})")
        top5 = set(record["retrieved"][:5])
        lost = [u for u in record["expected"] if u not in top5]
        if lost:
            out.append(f"retrieval: {', '.join(lost)} not in the top 5")
        if record.get("missing_facts") and not record["abstained"]:
            out.append("key facts missing: " + "; ".join(" / ".join(f) for f in record["missing_facts"]))
    bad = [s for s in record["sentences"] if not s["supported"]]
    if bad:
        out.append(f"{len(bad)} sentence(s) not supported by their citation")
    precision = record["scores"].get("citation_precision")
    if precision is not None and precision < 1.0 and not bad:
        out.append("irrelevant citation(s)")
    return out


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


def summarize(records: Sequence[dict]) -> dict:
    """The metrics over a set of item records (all items, or one type)."""
    answerable = [r["answerable"] for r in records]
    abstained = [r["abstained"] for r in records]
    answered = [r for r in records if not r["abstained"]]
    sentences = [s for r in answered for s in r["sentences"]]
    latencies = [r["latency_ms"] for r in records]
    m: dict = {}
    for name in [f"recall@{k}" for k in RECALL_KS] + ["mrr@10", "ndcg@10", "key_fact_recall", "first_citation_right",
                                                       "top_section_facts", "top3_section_facts", "follow_up",
                                                       "citation_recall", "citation_precision"]:
        m[name] = _round(mean(r["scores"].get(name) for r in records))
    near = [r for r in records if r.get("near_topic")]
    m["near_topic_refusal"] = _round(sum(r["abstained"] for r in near) / len(near)) if near else None
    m["grounding"] = _round(sum(s["supported"] for s in sentences) / len(sentences)) if sentences else None
    m["correct_refusal"] = _round(correct_refusal_rate(abstained, answerable))
    m["false_refusal"] = _round(false_refusal_rate(abstained, answerable))
    m["latency_p50_ms"] = _round(percentile(latencies, 50), 1)
    m["latency_p95_ms"] = _round(percentile(latencies, 95), 1)
    m["items"] = len(records)
    m["answerable"] = sum(answerable)
    m["unanswerable"] = len(records) - sum(answerable)
    m["answered"] = len(answered)
    m["sentences"] = len(sentences)
    m["citations"] = sum(r.get("citation_counts", {}).get("citations", 0) for r in answered)
    return {name: m[name] for name in [*METRICS, *COUNTS]}


def run_eval(qa, items: Sequence[EvalItem], *, judge: SupportJudge | None = None, k: int = RETRIEVAL_DEPTH,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Every item through `qa.ask` (with its history), scored; metrics overall and per type.

    Returns a JSON-ready dict: `metrics`, `by_type`, `items` (one record each) and `judge`.
    """
    judge = judge or SupportJudge(qa.model)
    started = time.perf_counter()
    records = []
    for i, item in enumerate(items, start=1):
        records.append(evaluate_item(qa, item, judge, k=k))
        if progress:
            progress(i, len(items))
    types = [t for t in TYPES if any(r["type"] == t for r in records)]
    types += sorted({r["type"] for r in records} - set(types))
    calibration = load_calibration()
    return {
        "metrics": summarize(records),
        "by_type": {t: summarize([r for r in records if r["type"] == t]) for t in types},
        "by_half": {h: summarize([r for r in records if r["half"] == h]) for h in HALVES
                    if any(r["half"] == h for r in records)},
        "items": records,
        "judge": {
            "kind": "offline",
            "min_similarity": judge.thresholds.min_similarity,
            "min_content_share": judge.thresholds.min_content_share,
            **{key: calibration.get(key) for key in ("agreement", "agreement_leave_one_out", "precision",
                                                     "recall", "labels")},
        },
        "seconds": {"questions": round(time.perf_counter() - started, 2)},
    }


# --- CI gate ---------------------------------------------------------------------------------------

def load_thresholds(path: Path = GATE_PATH) -> dict:
    """eval/thresholds.json: {"about": …, "corpora": {name: {"min", "max", "measured", "measured_at"}}}."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"corpora": {}}


def corpus_gate(thresholds: dict, corpus: str) -> dict:
    """One corpus's thresholds: {"min": {metric: floor}, "max": {metric: ceiling}} (empty when it has none)."""
    data = thresholds.get("corpora", {}).get(corpus, {})
    return {"min": dict(data.get("min", {})), "max": dict(data.get("max", {}))}


def load_gate(path: Path = GATE_PATH, corpus: str = "seed") -> dict:
    """The CI thresholds of one corpus (the seed notes by default)."""
    return corpus_gate(load_thresholds(path), corpus)


def raise_thresholds(thresholds: dict, corpus: str, report: dict) -> str:
    """Raise one corpus's thresholds in `thresholds` to what `report` measured; says what changed."""
    gate = corpus_gate(thresholds, corpus)
    new = raised_gate(gate, report["metrics"])
    entry = thresholds.setdefault("corpora", {}).setdefault(corpus, {})
    entry.update(new, measured={k: report["metrics"][k] for k in report["metrics"] if k in METRICS},
                 measured_at={k: report.get("meta", {}).get(k) for k in ("date", "commit", "half")}
                 | {"questions": report["metrics"]["items"]})
    changed = [f"{side} {k}: {gate[side].get(k)} → {v}" for side in ("min", "max") for k, v in new[side].items()
               if gate[side].get(k) != v]
    return "; ".join(changed) if changed else "unchanged"


def gate_failures(metrics: dict, gate: dict) -> list[str]:
    """One line per metric on the wrong side of its threshold (a missing value fails too)."""
    out = []
    for name, floor in gate.get("min", {}).items():
        value = metrics.get(name)
        if value is None or value < floor:
            out.append(f"{name} = {value} is below the threshold {floor}")
    for name, ceiling in gate.get("max", {}).items():
        value = metrics.get(name)
        if value is None or value > ceiling:
            out.append(f"{name} = {value} is above the threshold {ceiling}")
    return out


GATED = ("recall@1", "recall@3", "recall@5", "mrr@10", "ndcg@10", "key_fact_recall", "first_citation_right",
         "grounding", "citation_recall", "citation_precision", "correct_refusal", "false_refusal", "follow_up")  # latency depends on the machine: not gated


def raised_gate(gate: dict, metrics: dict) -> dict:
    """The thresholds moved up to what was measured (floored to 2 decimals; ceilings rounded up), never
    down: a metric that got worse keeps its old threshold (and fails the gate)."""
    new = {"min": dict(gate.get("min", {})), "max": dict(gate.get("max", {}))}
    for name in GATED:
        value = metrics.get(name)
        if value is None:
            continue
        if METRICS[name][1] == "higher":
            level = math.floor(value * 100 + 1e-9) / 100
            new["min"][name] = max(level, new["min"].get(name, 0.0))
        else:
            level = math.ceil(value * 100 - 1e-9) / 100
            new["max"][name] = min(level, new["max"].get(name, 1.0))
    return new
