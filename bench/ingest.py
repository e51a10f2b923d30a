"""Ingest benchmark: our full ingest vs raw `SentenceTransformer.encode` of the same chunk texts.

    python -m bench.ingest [--notes DIR] [--repeat 3]

Prints, in one run: full-ingest throughput (texts/s: chunks and answer units) next to the floor
(encode alone of the same texts, same batch size), their ratio, and the time of a no-change re-run and of a one-section edit re-run.
Medians over --repeat runs, each into a fresh temp index.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ingest.chunk import chunk_sections
from ingest.index import load_corpus, sync_index
from notes.units import unit_embed_text, units_of
from qa.embeddings import load_embedding_model
from qa.settings import Settings


def median(values: list[float]) -> float:
    return statistics.median(values)


def edit_one_section(notes: Path) -> None:
    """Append a sentence to the first bullet-free paragraph of the first note (one section changes)."""
    note = sorted(notes.rglob("*.md"))[0]
    text = note.read_text(encoding="utf-8")
    marker = "\n## "
    cut = text.find(marker, text.find(marker) + 1)
    note.write_text(text[:cut] + "\n\nAn edited sentence for the benchmark.\n" + text[cut:], encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--notes", type=Path, default=Path("corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    model = load_embedding_model()
    corpus = load_corpus(args.notes)
    chunks = [c for n in corpus.notes for c in chunk_sections(n.sections)]
    # Ingest embeds the chunks and every section's answer units: the floor encodes the same texts.
    units = list(dict.fromkeys(unit_embed_text(u, s.breadcrumb) for n in corpus.notes for s in n.content_sections
                               for u in units_of(s.text)))
    texts = [c.embed_text for c in chunks] + units
    st_model = model.embeddings._client
    st_model.encode(texts[:8])  # warm up

    floor, full, noop, edit = [], [], [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        st_model.encode(texts, batch_size=64, normalize_embeddings=True)
        floor.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as tmp:
            notes = Path(tmp) / "notes"
            shutil.copytree(args.notes, notes)
            settings = Settings(notes_dir=notes, chroma_dir=Path(tmp) / "idx", _env_file=None)
            full.append(sync_index(settings, model, progress=False).seconds)
            noop.append(sync_index(settings, model, progress=False).seconds)
            edit_one_section(notes)
            edited = sync_index(settings, model, progress=False)
            edit.append(edited.seconds)

    n = len(texts)
    print(f"texts: {len(chunks)} chunks + {len(units)} answer units from {len(corpus.notes)} notes; "
          f"medians of {args.repeat} runs")
    print(f"floor  (SentenceTransformer.encode): {median(floor):.2f}s  {n / median(floor):.1f} texts/s")
    print(f"ingest (parse+chunk+embed+store):    {median(full):.2f}s  {n / median(full):.1f} texts/s")
    print(f"ratio ingest/floor: {median(full) / median(floor):.2f}x")
    print(f"no-change re-run: {median(noop):.2f}s   one-section edit re-run: {median(edit):.2f}s "
          f"({edited.embedded} chunk(s) embedded)")


if __name__ == "__main__":
    main()
