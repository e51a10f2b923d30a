"""Reports of an evaluation run: Markdown, JSON (same content) and PNG charts; and run comparisons.

The Streamlit evaluation page reads the latest run with `load_report(DIR)` (the JSON) and shows the
charts listed in its `charts` field (file names relative to DIR).
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.runner import COUNTS, METRICS

DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
REPORT_JSON, REPORT_MD = "report.json", "report.md"
CHARTS = {
    "per_type": "per_type_scores.png",
    "similarity": "judge_similarity.png",
    "latency": "latency.png",
    "rank": "first_relevant_rank.png",
}
TYPE_COLUMNS = ("recall@5", "mrr@10", "key_fact_recall", "grounding", "citation_precision", "correct_refusal",
                "false_refusal")


def fmt(value, name: str = "") -> str:
    if value is None:
        return "–"
    if name.endswith("_ms"):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _status(name: str, value, target) -> str:
    if target is None or value is None:
        return ""
    better = METRICS[name][1]
    ok = value >= target if better == "higher" else value <= target
    return "meets" if ok else "**short**"


def render_markdown(report: dict) -> str:
    """The human report: summary, per-type table, judge, every failing item."""
    m, meta, judge = report["metrics"], report.get("meta", {}), report.get("judge", {})
    gate = report.get("gate", {})
    lines = ["# Evaluation report", ""]
    facts = [f"{m['items']} questions ({m['answerable']} answerable, {m['unanswerable']} not)"]
    if meta.get("questions_file"):
        facts.append(f"from `{meta['questions_file']}`")
    if meta.get("date"):
        facts.append(f"run {meta['date']}")
    if meta.get("commit"):
        facts.append(f"commit `{meta['commit']}`")
    if meta.get("inference_threads"):
        facts.append(f"{meta['inference_threads']} inference thread(s)")
    seconds = report.get("seconds", {})
    if seconds.get("total") is not None:
        facts.append(f"{seconds['total']:.1f} s in all ({seconds.get('load', 0):.1f} s loading, "
                     f"{seconds.get('questions', 0):.1f} s answering)")
    lines += ["; ".join(facts) + ".", ""]
    lines += ["## Summary", "", "| metric | value | target | CI threshold | |", "| --- | ---: | ---: | ---: | --- |"]
    for name, (what, better, target) in METRICS.items():
        threshold = gate.get("min", {}).get(name, gate.get("max", {}).get(name))
        tgt = "" if target is None else ("≥ " if better == "higher" else "≤ ") + fmt(target)
        thr = "" if threshold is None else ("≥ " if name in gate.get("min", {}) else "≤ ") + fmt(threshold, name)
        lines.append(f"| {name} | {fmt(m[name], name)} | {tgt} | {thr} | {_status(name, m[name], target)} |")
    lines += ["", "Counts: " + ", ".join(f"{c} {m[c]}" for c in COUNTS) + ".", ""]
    if report.get("gate_failures"):
        lines += ["**Below the CI thresholds:** " + "; ".join(report["gate_failures"]), ""]
    lines += ["What the metrics mean:", ""]
    lines += [f"- **{name}**: {what}." for name, (what, _, _) in METRICS.items()]
    lines += ["", "## Per question type", "",
              "| type | items | " + " | ".join(TYPE_COLUMNS) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in TYPE_COLUMNS) + " |"]
    for t, tm in report["by_type"].items():
        lines.append(f"| {t} | {tm['items']} | " + " | ".join(fmt(tm[c], c) for c in TYPE_COLUMNS) + " |")
    lines += ["", "## Judge", ""]
    lines.append(
        f"Offline judge (`qa/judge.py`): supported when similarity ≥ {judge.get('min_similarity')}, every "
        f"number present, ≥ {judge.get('min_content_share')} of the content words present and the same "
        f"negation. Agreement with the {judge.get('labels')} hand labels in `eval/judge_labels.jsonl`: "
        f"{fmt(judge.get('agreement'))} (leave-one-out {fmt(judge.get('agreement_leave_one_out'))}; "
        f"precision {fmt(judge.get('precision'))}, recall {fmt(judge.get('recall'))}).")
    if report.get("llm_judge"):
        lines += ["", f"LLM judge: {report['llm_judge'].get('status')}"]
        for name, v in (report["llm_judge"].get("metrics") or {}).items():
            lines.append(f"- {name}: {fmt(v.get('mean'))} ± {fmt(v.get('stdev'))} over {v.get('runs')} runs "
                         "(advisory, not gated)")
    charts = report.get("charts", [])
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c}]({c})" for c in charts]
    failing = [r for r in report["items"] if r["failures"]]
    lines += ["", f"## Failing items ({len(failing)} of {len(report['items'])})", ""]
    if not failing:
        lines.append("None.")
    for r in failing:
        lines += [f"### {r['id']} ({r['type']}{'' if r['answerable'] else ', unanswerable'})", ""]
        for turn in r.get("history") or []:
            lines.append(f"> {turn['role']}: {turn['content']}")
        lines.append(f"> **Q:** {r['question']}")
        lines.append("")
        lines.append("- why: " + "; ".join(r["failures"]))
        lines.append(f"- expected: {', '.join(r['expected']) or 'a refusal'}")
        lines.append(f"- retrieved: {', '.join(r['retrieved'][:5])}")
        if r["searched_query"] != r["question"]:
            lines.append(f"- searched: {r['searched_query']}")
        lines.append(f"- answer{' (refused: ' + str(r['reason']) + ')' if r['abstained'] else ''}: {r['answer']}")
        for c in r["citations"]:
            lines.append(f"  - [{c['n']}] {c['url']}")
        for s in r["sentences"]:
            if not s["supported"]:
                lines.append(f"  - unsupported: “{s['text']}” (similarity {fmt(s['similarity'])}, "
                             f"missing {', '.join(s['missing']) or 'nothing'})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_charts(report: dict, out: Path) -> list[str]:
    """PNG charts into `out`; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    # 1. per-type scores
    types = list(report["by_type"])
    cols = [c for c in TYPE_COLUMNS if any(report["by_type"][t][c] is not None for t in types)]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(cols))
    for j, c in enumerate(cols):
        values = [report["by_type"][t][c] or 0.0 for t in types]
        ax.bar([i + j * width for i in range(len(types))], values, width, label=c)
    ax.set_xticks([i + width * (len(cols) - 1) / 2 for i in range(len(types))])
    ax.set_xticklabels([f"{t}\n(n={report['by_type'][t]['items']})" for t in types])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Scores per question type (false_refusal: lower is better)")
    ax.legend(fontsize=8, ncol=4, loc="lower center", bbox_to_anchor=(0.5, -0.38))
    fig.tight_layout()
    fig.savefig(out / CHARTS["per_type"], dpi=100)
    plt.close(fig)
    written.append(CHARTS["per_type"])
    # 2. judge similarity of answer sentences to their cited section
    sentences = [s for r in report["items"] for s in r["sentences"] if s["similarity"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [i / 40 for i in range(41)]
    ax.hist([s["similarity"] for s in sentences if s["supported"]], bins=bins, alpha=0.7, label="supported")
    ax.hist([s["similarity"] for s in sentences if not s["supported"]], bins=bins, alpha=0.7, label="not supported")
    if report.get("judge", {}).get("min_similarity") is not None:
        ax.axvline(report["judge"]["min_similarity"], color="black", linestyle="--", label="judge threshold")
    ax.set_xlabel("similarity of the sentence to its cited section")
    ax.set_ylabel("answer sentences")
    ax.set_title("Grounding: judge similarity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / CHARTS["similarity"], dpi=100)
    plt.close(fig)
    written.append(CHARTS["similarity"])
    # 3. latency
    latencies = [r["latency_ms"] for r in report["items"]]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(latencies, bins=30)
    for name, style in (("latency_p50_ms", "--"), ("latency_p95_ms", ":")):
        if report["metrics"][name] is not None:
            ax.axvline(report["metrics"][name], color="black", linestyle=style,
                       label=f"{name[8:11]} {report['metrics'][name]:.0f} ms")
    ax.set_xlabel("ms per question")
    ax.set_ylabel("questions")
    ax.set_title("Latency of one ask")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / CHARTS["latency"], dpi=100)
    plt.close(fig)
    written.append(CHARTS["latency"])
    # 4. rank of the first reference section
    ranks = [r.get("first_relevant_rank") for r in report["items"] if r["expected"]]
    labels = [str(i) for i in range(1, 11)] + ["miss"]
    counts = [sum(1 for x in ranks if x == i) for i in range(1, 11)] + [sum(1 for x in ranks if x is None)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(labels, counts)
    ax.set_xlabel("rank of the first reference section (top 10)")
    ax.set_ylabel("answerable questions")
    ax.set_title("Retrieval: where the answer's section ranks")
    fig.tight_layout()
    fig.savefig(out / CHARTS["rank"], dpi=100)
    plt.close(fig)
    written.append(CHARTS["rank"])
    return written


def write_reports(report: dict, out: Path) -> dict[str, Path]:
    """report.md, report.json and the charts into `out` (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report["charts"] = write_charts(report, out)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    return {"md": out / REPORT_MD, "json": out / REPORT_JSON, **{c: out / c for c in report["charts"]}}


def write_overview(summary: dict, out: Path) -> Path:
    """DIR/report.md and report.json: one table per corpus (all questions and each half), linking each
    corpus's own report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = summary.get("meta", {})
    lines = ["# Evaluation overview", "",
             f"Run {meta.get('date', '')} at commit `{meta.get('commit')}`, questions: {meta.get('half', 'all')}; "
             f"{meta.get('seconds', 0):.0f} s. The tune half is what `python -m eval.fit` learned from; the report "
             "half is the one to quote.", ""]
    for name, corpus in summary["corpora"].items():
        m, halves = corpus["metrics"], corpus.get("by_half", {})
        lines += [f"## {name}", "", f"{m['items']} questions ({m['answerable']} answerable, {m['unanswerable']} "
                  f"not) from `{corpus['meta'].get('questions_file')}`; details in [{name}/report.md]({name}/report.md).",
                  "", "| metric | all | " + " | ".join(halves) + " | target |",
                  "| --- | ---: | " + " | ".join("---:" for _ in halves) + " | ---: |"]
        for metric, (_, better, target) in METRICS.items():
            tgt = "" if target is None else ("≥ " if better == "higher" else "≤ ") + fmt(target)
            lines.append(f"| {metric} | {fmt(m[metric], metric)} | "
                         + " | ".join(fmt(halves[h][metric], metric) for h in halves) + f" | {tgt} |")
        if corpus.get("gate_failures"):
            lines += ["", "**Below the CI thresholds:** " + "; ".join(corpus["gate_failures"])]
        lines.append("")
    (out / REPORT_MD).write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return out / REPORT_MD


def load_report(path: Path = DEFAULT_OUT) -> dict | None:
    """The report in a folder (or a report.json path); None when there is none yet."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def compare(old: dict, new: dict) -> list[dict]:
    """Per metric: old value, new value, and whether it got better, worse or stayed the same."""
    rows = []
    for name, (_, better, _) in METRICS.items():
        a, b = old.get("metrics", {}).get(name), new.get("metrics", {}).get(name)
        if a is None or b is None:
            verdict = "n/a"
        else:
            # latency is noisy: a change under 10 % is not news
            tolerance = 0.1 * max(abs(a), 1.0) if name.endswith("_ms") else 5e-4
            if abs(b - a) <= tolerance:
                verdict = "same"
            elif (b > a) == (better == "higher"):
                verdict = "better"
            else:
                verdict = "worse"
        rows.append({"metric": name, "old": a, "new": b, "verdict": verdict})
    return rows


def format_comparison(rows: list[dict]) -> str:
    width = max(len(r["metric"]) for r in rows)
    lines = [f"{'metric':<{width}}  {'old':>8}    {'new':>8}  change"]
    for r in rows:
        lines.append(f"{r['metric']:<{width}}  {fmt(r['old'], r['metric']):>8} → {fmt(r['new'], r['metric']):>8}  "
                     f"{r['verdict']}")
    worse = [r["metric"] for r in rows if r["verdict"] == "worse"]
    better = [r["metric"] for r in rows if r["verdict"] == "better"]
    lines.append(f"{len(better)} better, {len(worse)} worse" + (f" ({', '.join(worse)})" if worse else ""))
    return "\n".join(lines)
