"""`python -m eval [--out DIR] [--compare OLD.json] [--questions FILE] [--judge offline|llm] [--gate]`

Validates the question file first (bad lines → their line numbers, exit 2, before any model is
loaded), loads the pipeline once, runs every question through it, and writes report.md, report.json
and PNG charts into DIR (default eval/reports/). `--compare` prints what got better or worse than an
earlier report.json; `--gate` exits 1 when a metric is on the wrong side of eval/thresholds.json.
"""

from __future__ import annotations

import os

# One inference thread unless told otherwise: on this small shared CPU, two torch threads contend
# and one short query took ~500 ms instead of ~15 ms (the whole run: ~110 s instead of ~35 s).
# Answers are the same either way; the report records the thread count next to the latencies.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from eval.questions import QUESTIONS_PATH, AnchorIndex, QuestionFileError, load_questions  # noqa: E402
from eval.report import DEFAULT_OUT, compare, fmt, format_comparison, write_reports  # noqa: E402
from eval.runner import GATE_PATH, METRICS, gate_failures, load_gate, raised_gate, run_eval  # noqa: E402

EXIT_OK, EXIT_GATE, EXIT_BAD_USAGE = 0, 1, 2
SUMMARY = ("recall@1", "recall@5", "mrr@10", "ndcg@10", "key_fact_recall", "grounding", "citation_recall",
           "citation_precision", "correct_refusal", "false_refusal", "latency_p50_ms", "latency_p95_ms")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description="Evaluate the notes Q&A pipeline offline.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="folder for report.md, report.json and charts (default eval/reports/)")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="an earlier report.json to compare with")
    parser.add_argument("--questions", type=Path, default=QUESTIONS_PATH, metavar="FILE",
                        help="question file (JSON lines; default eval/questions.jsonl)")
    parser.add_argument("--judge", choices=("offline", "llm"), default="offline",
                        help="llm adds advisory RAGAS scores when an LLM is configured")
    parser.add_argument("--gate", action="store_true", help="exit 1 when a metric misses eval/thresholds.json")
    parser.add_argument("--raise-thresholds", action="store_true",
                        help="raise eval/thresholds.json to this run's levels (never lowers a threshold)")
    return parser


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def _progress():
    """A progress bar on stderr when it is a terminal (tqdm), else nothing."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="q", file=sys.stderr, desc="Evaluating")

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    from qa.errors import NotesQAError
    from qa.settings import load_settings

    try:
        settings = load_settings()
        anchors = AnchorIndex.from_notes_dir(settings.notes_dir)
        items = load_questions(args.questions, anchors)
    except QuestionFileError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_USAGE
    except (NotesQAError, ValueError) as exc:  # no notes folder, bad settings
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    old = None
    if args.compare:
        try:
            old = json.loads(args.compare.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"error: cannot read {args.compare} to compare with ({exc})", file=sys.stderr)
            return EXIT_BAD_USAGE
    llm_message = None
    if args.judge == "llm":
        from eval.llm_judge import not_configured_message

        llm_message = not_configured_message(settings)
        if llm_message:
            print(llm_message, file=sys.stderr)

    from qa.service import NotesQA

    try:
        qa = NotesQA.load(settings, build_if_missing=True)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    loaded = time.perf_counter()
    update, close = _progress()
    try:
        report = run_eval(qa, items, progress=update)
    finally:
        close()
    if args.judge == "llm":
        from eval.llm_judge import run_llm_judge

        report["llm_judge"] = run_llm_judge(report["items"], settings, qa.model) if not llm_message else {
            "status": llm_message, "metrics": {}}
    gate = load_gate(GATE_PATH) if GATE_PATH.exists() else {"min": {}, "max": {}}
    report["gate"] = gate
    report["gate_failures"] = gate_failures(report["metrics"], gate)
    report["seconds"].update(load=round(loaded - started, 2), total=round(time.perf_counter() - started, 2))
    try:
        questions_file = str(args.questions.resolve().relative_to(Path.cwd()))
    except ValueError:
        questions_file = str(args.questions)
    report["meta"] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "commit": _commit(),
        "questions_file": questions_file, "notes_dir": str(settings.notes_dir), "model": qa.model.name,
        "index": settings.index_location, "inference_threads": _threads(),
    }
    paths = write_reports(report, args.out)

    m = report["metrics"]
    width = max(len(n) for n in SUMMARY)
    print(f"{m['items']} questions in {report['seconds']['total']:.1f} s "
          f"(model and index {report['seconds']['load']:.1f} s)")
    for name in SUMMARY:
        target = METRICS[name][2]
        note = "" if target is None else f"  (target {'≥' if METRICS[name][1] == 'higher' else '≤'} {target})"
        print(f"  {name:<{width}}  {fmt(m[name], name):>6}{note}")
    judge = report["judge"]
    print(f"judge agreement with the hand labels: {fmt(judge.get('agreement'))}")
    for name, v in (report.get("llm_judge") or {}).get("metrics", {}).items():
        print(f"  LLM {name}: {v['mean']:.3f} ± {v['stdev']:.3f} ({v['runs']} runs, advisory)")
    failing = sum(1 for r in report["items"] if r["failures"])
    print(f"{failing} failing items; report: {paths['md']}")
    if old is not None:
        print()
        print(f"compared with {args.compare}:")
        print(format_comparison(compare(old, report)))
    if args.raise_thresholds:
        new = raised_gate(gate, report["metrics"])
        data = json.loads(GATE_PATH.read_text(encoding="utf-8")) if GATE_PATH.exists() else {}
        data.update(new, measured={k: report["metrics"][k] for k in report["metrics"] if k in METRICS},
                    measured_at={"date": report["meta"]["date"], "commit": report["meta"]["commit"],
                                 "questions": report["metrics"]["items"]})
        GATE_PATH.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        changed = [f"{side} {k}: {gate[side].get(k)} → {v}" for side in ("min", "max")
                   for k, v in new[side].items() if gate[side].get(k) != v]
        print(f"thresholds: {'; '.join(changed) if changed else 'unchanged'} ({GATE_PATH})")
    if report["gate_failures"]:
        print("below the CI thresholds (eval/thresholds.json):", file=sys.stderr)
        for line in report["gate_failures"]:
            print(f"  {line}", file=sys.stderr)
        if args.gate:
            return EXIT_GATE
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
