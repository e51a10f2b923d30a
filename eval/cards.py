"""`python -m eval.cards sample --seed N --out DIR`: 40 cards per corpus for the rubric review
(eval/study_rubric.md); `python -m eval.cards score DIR`: the share that pass, by corpus and criterion,
with the failures by class (labels in DIR/labels.jsonl, written by the reviewer)."""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from eval.corpora import corpora, materialize
from ingest.index import load_corpus
from study.cards import make_cards

RUBRIC_CORPORA = ("seed", "og-aws", "poetry-docs")
HELD_OUT = ("squad",)  # Wikipedia articles as notes: no card rule was ever tuned on them
CRITERIA = ("meaningful", "guessable", "correct", "clean")
DEFAULT_SAMPLE = 40


def sample_cards(corpus: str, *, n: int = DEFAULT_SAMPLE, seed: int) -> list[dict]:
    """`n` cards drawn at random (fixed seed) from every card the corpus's notes give."""
    c = materialize(corpora()[corpus])
    notes = load_corpus(Path(c.notes_dir or "corpus")).notes
    cards = make_cards(notes)
    picked = random.Random(f"{corpus}-{seed}").sample(cards, min(n, len(cards)))
    return [{"corpus": corpus, "id": x.id, "heading": x.heading, "prompt": x.prompt, "answer": x.answer,
             "quote": x.quote, "kind": x.kind} for x in picked]


def score_labels(folder: Path) -> str:
    """The pass share per corpus and per criterion, then each failure with its class."""
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines() if line.strip()]
    cards = {c["id"]: c for line in (folder / "cards.jsonl").read_text().splitlines() if line.strip()
             for c in [json.loads(line)]}
    lines = ["| corpus | cards | pass | " + " | ".join(CRITERIA) + " |", "|---" * (3 + len(CRITERIA)) + "|"]
    for corpus in RUBRIC_CORPORA + HELD_OUT + ("all",):
        rows = [l for l in labels if corpus in ("all", l["corpus"])]
        if not rows:
            continue
        passed = sum(all(l[k] for k in CRITERIA) for l in rows)
        lines.append(f"| {corpus} | {len(rows)} | {passed / len(rows):.0%} | " +
                     " | ".join(f"{sum(bool(r[k]) for r in rows) / len(rows):.0%}" for k in CRITERIA) + " |")
    failures = [l for l in labels if not all(l[k] for k in CRITERIA)]
    lines += ["", "Failures by class: " + ", ".join(f"{k} {v}" for k, v in Counter(
        l.get("class") or "?" for l in failures).most_common()), ""]
    for l in failures:
        c = cards.get(l["id"], {})
        lines.append(f"- {l['corpus']} [{l.get('class')}] “{c.get('prompt')}” → {c.get('answer')} ({l.get('note', '')})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.cards")
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample")
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--n", type=int, default=DEFAULT_SAMPLE)
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument("--corpus", action="append", choices=RUBRIC_CORPORA + HELD_OUT,
                        help="corpora to sample (default: seed, og-aws and poetry-docs)")
    score = sub.add_parser("score")
    score.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "sample":
        args.out.mkdir(parents=True, exist_ok=True)
        rows = [r for name in args.corpus or RUBRIC_CORPORA for r in sample_cards(name, n=args.n, seed=args.seed)]
        (args.out / "cards.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{len(rows)} cards written to {args.out / 'cards.jsonl'}")
    else:
        print(score_labels(args.folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
