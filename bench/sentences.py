"""Sentence segmenters compared: boundary accuracy on hand-labelled passages, and speed on real notes.

    python -m bench.sentences

`eval/sentences.jsonl` holds 75 passages of the three corpora (abbreviations, versions, prices, file
names, inline code…) with their sentences as a careful reader splits them. For each segmenter (with
our code masking and abbreviation repair around it, as the notes model uses it) this prints boundary
precision / recall / F1, passages split exactly right, and the time to split every block of
../shared/corpora/og-aws and poetry-docs (median of 3).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from notes.blocks import walk_blocks
from notes.sentences import SEGMENTERS, split_sentences

LABELS = Path(__file__).resolve().parent.parent / "eval" / "sentences.jsonl"
CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def boundaries(text: str, sentences: list[str]) -> set[int]:
    """Where each sentence but the last ends, as offsets into `text`."""
    out, pos = set(), 0
    for sentence in sentences[:-1]:
        pos = text.index(sentence, pos) + len(sentence)
        out.add(pos)
    return out


def main() -> None:
    items = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [b.text for path in sorted(CORPORA.rglob("*.md"))
             for b in walk_blocks(path.read_text(encoding="utf-8")).blocks if b.kind in ("paragraph", "item")]
    print(f"{len(items)} labelled passages; speed on {len(texts)} blocks of {CORPORA}")
    print(f"{'segmenter':10} {'precision':>9} {'recall':>7} {'F1':>6} {'exact':>7} {'split all (s)':>14}")
    for name in SEGMENTERS:
        tp = fp = fn = exact = 0
        for item in items:
            gold = boundaries(item["text"], item["sentences"])
            spans = split_sentences(item["text"], segmenter=name)
            got = {end for _, end in spans[:-1]}
            tp, fp, fn = tp + len(got & gold), fp + len(got - gold), fn + len(gold - got)
            exact += got == gold
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            for text in texts:
                split_sentences(text, segmenter=name)
            seconds.append(time.perf_counter() - started)
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        print(f"{name:10} {precision:9.3f} {recall:7.3f} {f1:6.3f} {exact:4}/{len(items)} "
              f"{statistics.median(seconds):14.3f}")


if __name__ == "__main__":
    main()
