"""Parsing benchmark: `notes.parse.parse_note` vs markdown-it-py's own parse of the same text.

    python -m bench.parse [--repeat 5]

For the seed notes and each shared corpus (../shared/corpora), prints the median seconds to parse
every note into sections, the floor (markdown-it tokenising the same text, which parse_note does once),
their ratio, and the time to cut every section into answer units (blocks + pysbd sentences).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from notes.markdown import parser
from notes.parse import parse_note
from notes.units import extract_units

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"seed": REPO / "corpus", "og-aws": REPO.parent / "shared" / "corpora" / "og-aws",
           "poetry-docs": REPO.parent / "shared" / "corpora" / "poetry-docs"}


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(prog="python -m bench.parse")
    args.add_argument("--repeat", type=int, default=5)
    repeat = args.parse_args(argv).repeat
    print(f"{'notes':12} {'KB':>6} {'parse_note (s)':>15} {'markdown-it (s)':>16} {'ratio':>6} {'units (s)':>10}")
    for name, folder in FOLDERS.items():
        if not folder.is_dir():
            print(f"{name:12} missing: {folder}")
            continue
        texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.md"))}
        size = sum(len(t.encode()) for t in texts.values()) / 1024
        ours = timed(lambda: [parse_note(t, n) for n, t in texts.items()], repeat)
        floor = timed(lambda: [parser().parse(t) for t in texts.values()], repeat)
        sections = [s for n, t in texts.items() for s in parse_note(t, n).content_sections]
        units = timed(lambda: [extract_units(s.text) for s in sections], max(1, repeat // 2))
        print(f"{name:12} {size:6.0f} {ours:15.3f} {floor:16.3f} {ours / floor:6.2f} {units:10.2f}")


if __name__ == "__main__":
    main()
