"""`python -m eval [--corpus NAME] [--half tune|report] [--out DIR] [--compare OLD.json] [--questions FILE] [--gate]`

Runs every corpus (eval/corpora.py: the seed notes, and the shared corpora in ../shared/corpora/)
through the real pipeline, one index per corpus, the model loaded once. Every question file is
validated first (bad lines → their line numbers, exit 2, before any model is loaded). Writes one
report per corpus (DIR/<corpus>/report.md, report.json, PNG charts) and an overview of all
(DIR/report.md, report.json), and prints one table per corpus with its tune and report halves.
`--compare` prints what got better or worse than an earlier report.json; `--gate` exits 1 when a
metric is on the wrong side of that corpus's thresholds in eval/thresholds.json.
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

from eval.corpora import (HALVES, SHARED_CORPORA, Corpus, corpora, corpus_settings, half_of,  # noqa: E402
                          materialize, open_corpus)
from eval.questions import AnchorIndex, QuestionFileError, load_questions  # noqa: E402
from eval.report import DEFAULT_OUT, compare, fmt, format_comparison, write_overview, write_reports  # noqa: E402
from eval.runner import (GATE_PATH, METRICS, corpus_gate, gate_failures, load_thresholds,  # noqa: E402
                         raise_thresholds, run_eval)

EXIT_OK, EXIT_GATE, EXIT_BAD_USAGE = 0, 1, 2
SUMMARY = ("recall@1", "recall@5", "mrr@10", "key_fact_recall", "top_section_facts", "top3_section_facts",
           "first_citation_right", "grounding", "citation_precision", "correct_refusal", "near_topic_refusal",
           "false_refusal", "follow_up", "latency_p50_ms", "latency_p95_ms")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description="Evaluate the notes Q&A pipeline offline.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help="folder for the reports (default eval/reports/): DIR/report.md sums up every "
                             "corpus, DIR/<corpus>/ holds each one's report.md, report.json and charts")
    parser.add_argument("--compare", type=Path, metavar="OLD.json", help="an earlier report.json to compare with")
    parser.add_argument("--corpus", action="append", choices=tuple(corpora()), metavar="NAME",
                        help=f"evaluate only this corpus ({', '.join(corpora())}; repeatable; default: every "
                             "corpus whose notes are on this machine)")
    parser.add_argument("--half", choices=HALVES, help="only the tune or the report half of each question set")
    parser.add_argument("--questions", type=Path, metavar="FILE",
                        help="one question file (JSON lines) on the configured notes instead of the corpora")
    parser.add_argument("--answer-model", type=Path, metavar="FILE",
                        help="answer model to use (default qa/answer_model.json; see python -m eval.fit)")
    parser.add_argument("--judge", choices=("offline", "llm"), default="offline",
                        help="llm adds advisory RAGAS scores when an LLM is configured")
    parser.add_argument("--gate", action="store_true", help="exit 1 when a metric misses eval/thresholds.json")
    parser.add_argument("--no-variants", action="store_true",
                        help="skip leave-one-corpus-out and the SQuAD-only ablation (the side-by-side table)")
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


def _progress(name: str = ""):
    """A progress bar on stderr when it is a terminal (tqdm), else nothing."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="q", file=sys.stderr, desc=f"Evaluating {name}".strip())

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _plan(args, base) -> list[tuple[str, object, list]]:
    """(name, settings, items) per corpus to run; every question file is checked before any model loads."""
    from qa.errors import NotesQAError

    if args.questions is not None:
        chosen = [Corpus("seed" if args.questions.resolve() == corpora()["seed"].questions else "custom",
                         args.questions)]
    else:
        known = corpora()
        chosen = [known[n] for n in (args.corpus or known) if args.corpus or known[n].available]
        missing = [c.name for c in chosen if not c.available]
        if missing:
            raise NotesQAError(f"The notes of {', '.join(missing)} are not on this machine "
                               f"({SHARED_CORPORA}; NOTESQA_CORPORA moves them).")
    plan = []
    for corpus in chosen:
        settings = corpus_settings(materialize(corpus), base)
        items = load_questions(corpus.questions, AnchorIndex.from_notes_dir(settings.notes_dir))
        if args.half:
            items = [i for i in items if half_of(i.id) == args.half]
        plan.append((corpus, settings, items))
    return plan


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    from qa.errors import NotesQAError
    from qa.settings import load_settings

    try:
        base = load_settings(**({"answer_model": args.answer_model} if args.answer_model else {}))
        plan = _plan(args, base)
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

        llm_message = not_configured_message(base)
        if llm_message:
            print(llm_message, file=sys.stderr)

    from qa.embeddings import load_embedding_model

    try:
        model = load_embedding_model(base.embed_model, batch_size=base.embed_batch_size)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_USAGE
    thresholds = load_thresholds()
    single = len(plan) == 1 and args.questions is not None
    summary: dict = {"corpora": {}, "gate_failures": []}
    opened: dict = {}
    for corpus, settings, items in plan:
        name = corpus.name
        corpus_started = time.perf_counter()
        try:
            qa = open_corpus(corpus, settings, model)
        except NotesQAError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return EXIT_BAD_USAGE
        loaded = time.perf_counter()
        opened[name] = (corpus, qa, items)
        update, close = _progress(name)
        try:
            report = run_eval(qa, items, progress=update)
        finally:
            close()
        if args.judge == "llm":
            from eval.llm_judge import run_llm_judge

            report["llm_judge"] = run_llm_judge(report["items"], settings, qa.model) if not llm_message else {
                "status": llm_message, "metrics": {}}
        gate = corpus_gate(thresholds, name)
        report["gate"] = gate
        report["gate_failures"] = gate_failures(report["metrics"], gate)
        report["seconds"].update(load=round(loaded - corpus_started, 2),
                                 total=round(time.perf_counter() - corpus_started, 2))
        report["meta"] = {
            "corpus": name, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "commit": _commit(),
            "questions_file": _shown(Path(dict((c.name, c.questions) for c in corpora().values()).get(
                name, args.questions or ""))), "half": args.half or "all", "notes_dir": str(settings.notes_dir),
            "model": qa.model.name, "index": settings.index_location, "inference_threads": _threads(),
            "answer_model": str(settings.answer_model or "qa/answer_model.json"),
        }
        paths = write_reports(report, args.out if single else args.out / name)
        summary["corpora"][name] = {k: report[k] for k in ("metrics", "by_half", "by_type", "gate_failures", "meta")}
        summary["gate_failures"] += [f"{name}: {line}" for line in report["gate_failures"]]
        print_summary(name, report, paths["md"])
        earlier = old.get("corpora", {}).get(name, old) if old else None
        if earlier is not None and earlier.get("metrics"):
            print(f"\ncompared with {args.compare}{'' if earlier is old else f' ({name})'}:")
            print(format_comparison(compare(earlier, report)))
        if args.raise_thresholds:
            print(f"thresholds ({name}): {raise_thresholds(thresholds, name, report)}")
        print()
    if not (single or args.no_variants or args.half):
        print_variants(opened, summary, args.out)
    if args.raise_thresholds:
        GATE_PATH.write_text(json.dumps(thresholds, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not single:
        summary["meta"] = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "commit": _commit(),
                           "half": args.half or "all", "seconds": round(time.perf_counter() - started, 1)}
        overview = write_overview(summary, args.out)
        print(f"Overview of every corpus: {overview}")
    print(f"See it in the app: bash scripts/run.sh, then the Evaluation page (or open {args.out / 'report.md'}).")
    if summary["gate_failures"]:
        print("below the CI thresholds (eval/thresholds.json):", file=sys.stderr)
        for line in summary["gate_failures"]:
            print(f"  {line}", file=sys.stderr)
        if args.gate:
            return EXIT_GATE
    return EXIT_OK


def print_variants(opened: dict, summary: dict, out: Path) -> None:
    """Leave-one-corpus-out and the SQuAD-only ablation, beside the shipped decision and the old answer
    model (eval/baselines/): printed, and written to DIR/quality.md and quality.json."""
    from eval.variants import COLUMNS, load_baseline, quality_table, run_variants

    update, close = _progress("variants")
    try:
        figures = run_variants(opened, progress=update)
    finally:
        close()
    for name in figures:
        halves = summary["corpora"][name].get("by_half", {})
        corpus = opened[name][0]
        figures[name][("reader", "report")] = halves.get("report") if corpus.fitted else summary["corpora"][name]["metrics"]
    baseline = load_baseline()
    table = quality_table(figures, baseline)
    header = (f"# Quality: the reader beside the old answer model\n\nOld answer model: {baseline.get('about', 'no baseline')}\n"
              "\n'left out': the decision fitted without that corpus, every question of it; 'SQuAD only': no fitted "
              "feature of ours (the reader's SQuAD dev threshold), report half. squad: held-out SQuAD articles, never "
              "fitted on (all its questions).\n\n")
    (out / "quality.md").write_text(header + table, encoding="utf-8")
    (out / "quality.json").write_text(json.dumps({name: {f"{m} {s}": v for (m, s), v in columns.items()}
                                                  for name, columns in figures.items()}, indent=2) + "\n",
                                      encoding="utf-8")
    print(header + table)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_summary(name: str, report: dict, md: Path) -> None:
    """The corpus's metrics, overall and per half, next to their targets."""
    m, halves = report["metrics"], report.get("by_half", {})
    width = max(len(n) for n in SUMMARY)
    print(f"== {name}: {m['items']} questions in {report['seconds']['total']:.1f} s "
          f"(model and index {report['seconds']['load']:.1f} s)")
    print(f"  {'metric':<{width}}  {'all':>6}" + "".join(f"  {h:>6}" for h in halves) + "  target")
    for metric in SUMMARY:
        target = METRICS[metric][2]
        note = "" if target is None else f"{'≥' if METRICS[metric][1] == 'higher' else '≤'} {target}"
        print(f"  {metric:<{width}}  {fmt(m[metric], metric):>6}"
              + "".join(f"  {fmt(halves[h][metric], metric):>6}" for h in halves) + f"  {note}")
    failing = sum(1 for r in report["items"] if r["failures"])
    print(f"  {failing} failing items; report: {md}")


if __name__ == "__main__":
    raise SystemExit(main())
