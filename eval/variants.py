"""The answer decision fitted without a corpus (leave-one-corpus-out), and without any of our questions
(the SQuAD-only ablation), run on the same questions as the shipped one, and the side-by-side table
`python -m eval` prints with the old answer model's figures (eval/baselines/).

Leave-one-corpus-out fits, in process, exactly what `python -m eval.fit --exclude CORPUS` fits (the
fusion weight and the decision, on the tune halves of the other corpora) and asks every question of the
left-out corpus. The ablation answers when the reader's best score clears the threshold its training
set on SQuAD dev articles (qa/models/reader.json), with no fitted feature of ours.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from eval.report import fmt
from eval.runner import METRICS

BASELINE_PATH = Path(__file__).resolve().parent / "baselines" / "answer-model-v1.json"
TABLE_METRICS = ("recall@1", "key_fact_recall", "top_section_facts", "first_citation_right", "correct_refusal",
                 "near_topic_refusal", "false_refusal", "follow_up", "latency_p95_ms")
SQUAD_ONLY_MARGIN = 2.0  # not fitted: the ablation uses nothing of our question sets
COLUMNS = (("old", "report"), ("reader", "report"), ("old", "loco"), ("reader", "loco"), ("squad-only", "report"))


@contextmanager
def answering_with(qa, model):
    """`qa` answers with `model` (decision and fusion weight) inside the block."""
    saved, weight = qa.answer_model, qa.retriever.keyword_weight
    qa.answer_model, qa.retriever.keyword_weight = model, model.keyword_weight
    try:
        yield qa
    finally:
        qa.answer_model, qa.retriever.keyword_weight = saved, weight


def leave_one_out_models(tune: dict[str, tuple[object, list]]) -> dict[str, object]:
    """Per corpus, the answer model fitted on the other corpora's tune halves (`tune`: name → (qa, items))."""
    from eval.fit import collect, fit, fit_keyword_weight
    models = {}
    for left_out in tune:
        others = {name: pair for name, pair in tune.items() if name != left_out}
        if not others:
            continue
        saved = {name: qa.retriever.keyword_weight for name, (qa, _) in others.items()}
        weight, _ = fit_keyword_weight(list(others.values()))
        cases = [case for name, (qa, items) in others.items() for case in collect(qa, name, items)]
        fitted, _ = fit(cases)
        for name, (qa, _) in others.items():
            qa.retriever.keyword_weight = saved[name]
        models[left_out] = replace(fitted, keyword_weight=weight,
                                   fitted_on={"corpora": sorted(others), "half": "tune"})
    return models


def load_baseline(path: Path = BASELINE_PATH) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def quality_table(figures: dict[str, dict[tuple[str, str], dict]], baseline: dict) -> str:
    """Markdown: per corpus, the metrics of each (model, question set) column; `figures[corpus][(model, set)]`
    holds the reader's and the ablation's metrics, the old model's come from `baseline`."""
    lines = []
    for corpus, columns in figures.items():
        old = baseline.get("corpora", {}).get(corpus, {})
        head = ["old model, report half", "reader, report half", "old model, left out", "reader, left out",
                "reader, SQuAD only"]
        lines += [f"### {corpus}", "", "| metric | " + " | ".join(head) + " | target |",
                  "| --- | " + " | ".join("---:" for _ in head) + " | ---: |"]
        for metric in TABLE_METRICS:
            cells = []
            for model, subset in COLUMNS:
                values = old.get(subset, {}) if model == "old" else columns.get((model, subset), {})
                value = values.get(metric) if values else None
                cells.append(fmt(value, metric) if value is not None else "–")
            _, better, target = METRICS[metric]
            goal = "" if target is None else ("≥ " if better == "higher" else "≤ ") + fmt(target)
            lines.append(f"| {metric} | " + " | ".join(cells) + f" | {goal} |")
        lines.append("")
    return "\n".join(lines)


def squad_only_model(keyword_weight: float):
    """The ablation: answer when the reader's best score clears its SQuAD dev threshold; further units while
    they clear it too, within an unfitted margin."""
    from qa.answer_model import AnswerModel, LinearModel
    from qa.reader import reader_meta

    threshold = float(reader_meta()["squad_threshold"])
    best_only = LinearModel(("reader_best",), (0.0,), (1.0,), (1.0,), 0.0)
    return AnswerModel(best_only, threshold, SQUAD_ONLY_MARGIN, threshold, keyword_weight,
                       fitted_on={"corpora": ["squad dev"]})


def run_variants(opened: dict[str, tuple[object, object, list]], *, progress=None) -> dict:
    """Leave-one-corpus-out and the ablation for every opened corpus (`opened`: name → (corpus, qa, items)):
    name → {(model, set): metrics}."""
    from eval.corpora import half_of
    from eval.runner import run_eval

    tune = {name: (qa, [i for i in items if half_of(i.id) == "tune"]) for name, (corpus, qa, items) in opened.items()
            if corpus.fitted}
    loco = leave_one_out_models(tune) if len(tune) > 1 else {}
    figures: dict = {}
    for name, (corpus, qa, items) in opened.items():
        columns = figures.setdefault(name, {})
        report_half = [i for i in items if half_of(i.id) == "report"] if corpus.fitted else items
        if name in loco:
            with answering_with(qa, loco[name]):
                columns[("reader", "loco")] = run_eval(qa, items, progress=progress)["metrics"]
        with answering_with(qa, squad_only_model(qa.answer_model.keyword_weight)):
            columns[("squad-only", "report")] = run_eval(qa, report_half, progress=progress)["metrics"]
    return figures
