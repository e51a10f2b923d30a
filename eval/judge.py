"""Calibration of the support judge (qa/judge.py) on the hand labels: `python -m eval.judge`.

Re-fits `min_similarity` and `min_content_share` by a grid search on `eval/judge_labels.jsonl` and
rewrites `qa/judge_thresholds.json`; the judge itself is imported from `qa.judge` (re-exported here
so evaluation code can keep importing it from one place).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from qa.judge import (  # noqa: F401  (re-exported for the evaluation)
    NEGATION_MISMATCH, THRESHOLDS_PATH, JudgeThresholds, SupportJudge,
    Verdict, decide, judge_support, lexical_check, load_calibration, load_thresholds, normalise,
    passage_windows, strip_citations,
)

LABELS_PATH = Path(__file__).resolve().parent / "judge_labels.jsonl"
# The grid searched by `calibrate`.
SIMILARITY_GRID = tuple(round(0.30 + 0.025 * i, 3) for i in range(25))  # 0.30 … 0.90
CONTENT_SHARE_GRID = (0.5, 0.6, 0.67, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


# --- calibration -------------------------------------------------------------------------------

@dataclass
class LabelledPair:
    id: str
    sentence: str
    passage: str
    supported: bool


def load_labels(path: Path = LABELS_PATH) -> list[LabelledPair]:
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append(LabelledPair(str(row["id"]), row["sentence"], row["passage"], bool(row["supported"])))
    return pairs


def _accuracy(features: Sequence[Verdict], labels: Sequence[bool], t: JudgeThresholds) -> float:
    return sum(decide(f, t) == y for f, y in zip(features, labels)) / len(labels) if labels else 0.0


def _fit(features: Sequence[Verdict], labels: Sequence[bool]) -> tuple[JudgeThresholds, float]:
    """Best accuracy on the grid; ties go to the strictest content share, then the middle of the tied
    similarity range (the most room for noise on either side)."""
    best_acc, best = -1.0, None
    for share in sorted(CONTENT_SHARE_GRID, reverse=True):
        accs = [_accuracy(features, labels, JudgeThresholds(s, share)) for s in SIMILARITY_GRID]
        top = max(accs)
        if top > best_acc + 1e-12:
            tied = [s for s, a in zip(SIMILARITY_GRID, accs) if a >= top - 1e-12]
            # the longest run of consecutive tied grid points, and its middle
            runs, run = [], [tied[0]]
            for s in tied[1:]:
                if round(s - run[-1], 3) <= 0.025 + 1e-9:
                    run.append(s)
                else:
                    runs.append(run)
                    run = [s]
            runs.append(run)
            longest = max(runs, key=len)
            best_acc, best = top, JudgeThresholds(longest[len(longest) // 2], share)
    return best, best_acc


def calibrate(model, labels: Sequence[LabelledPair] | None = None) -> dict:
    """Grid-search the thresholds on the labelled pairs; returns what `qa/judge_thresholds.json` holds.

    Besides the accuracy of the chosen thresholds on all labels, reports a leave-one-out accuracy
    (each pair judged by thresholds fitted on the others: an honest estimate on unseen pairs) and the
    accuracy of each half of the judge alone.
    """
    labels = list(labels if labels is not None else load_labels())
    judge = SupportJudge(model, JudgeThresholds())
    model.embed_texts([normalise(p.sentence) for p in labels]  # one batch, cached for the features below
                      + [w for p in labels for w in passage_windows(p.passage)])
    features = [judge.features(pair.sentence, pair.passage) for pair in labels]
    truth = [p.supported for p in labels]
    chosen, accuracy = _fit(features, truth)
    loo_hits = 0
    for i in range(len(labels)):
        t, _ = _fit(features[:i] + features[i + 1:], truth[:i] + truth[i + 1:])
        loo_hits += decide(features[i], t) == truth[i]
    sim_only = max(_accuracy([Verdict(False, f.similarity, 1.0) for f in features], truth, JudgeThresholds(s, 0.0))
                   for s in SIMILARITY_GRID)
    lex_only = max(_accuracy([replace(f, similarity=1.0) for f in features], truth, JudgeThresholds(0.0, c))
                   for c in CONTENT_SHARE_GRID)
    disagreements = [
        {"id": p.id, "label": p.supported, "similarity": round(f.similarity, 3),
         "content_share": round(f.content_share, 3), "missing": f.missing}
        for p, f in zip(labels, features) if decide(f, chosen) != p.supported
    ]
    tp = sum(decide(f, chosen) and y for f, y in zip(features, truth))
    fp = sum(decide(f, chosen) and not y for f, y in zip(features, truth))
    fn = sum(not decide(f, chosen) and y for f, y in zip(features, truth))
    return {
        **asdict(chosen),
        "agreement": round(accuracy, 4),
        "agreement_leave_one_out": round(loo_hits / len(labels), 4) if labels else 0.0,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "agreement_similarity_only": round(sim_only, 4),
        "agreement_lexical_only": round(lex_only, 4),
        "labels": len(labels),
        "labels_supported": sum(truth),
        "disagreements": disagreements,
        "grid": {"min_similarity": list(SIMILARITY_GRID), "min_content_share": list(CONTENT_SHARE_GRID)},
        "model": getattr(model, "name", None),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m eval.judge [--dry-run]`: re-fit the judge thresholds on the labels."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m eval.judge", description=main.__doc__)
    parser.add_argument("--labels", type=Path, default=LABELS_PATH)
    parser.add_argument("--out", type=Path, default=THRESHOLDS_PATH)
    parser.add_argument("--dry-run", action="store_true", help="print the result, do not write the file")
    args = parser.parse_args(argv)
    from qa.embeddings import load_embedding_model

    result = calibrate(load_embedding_model(), load_labels(args.labels))
    text = json.dumps(result, indent=2) + "\n"
    if not args.dry_run:
        args.out.write_text(text, encoding="utf-8")
    print(f"min_similarity={result['min_similarity']} min_content_share={result['min_content_share']} "
          f"agreement={result['agreement']:.3f} (leave-one-out {result['agreement_leave_one_out']:.3f}; "
          f"similarity only {result['agreement_similarity_only']:.3f}, lexical only "
          f"{result['agreement_lexical_only']:.3f}) on {result['labels']} labels"
          + ("" if args.dry_run else f" → {args.out}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
