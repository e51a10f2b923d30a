"""`python -m ingest [--rebuild] [--notes DIR] [--strict]`: build or update the index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.errors import NotesQAError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Build or update the notes index.")
    parser.add_argument("--rebuild", action="store_true", help="drop the index and embed everything again")
    parser.add_argument("--notes", type=Path, metavar="DIR", help="notes folder (default: NOTES_DIR or corpus/)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ingest.index import sync_index
        from qa.embeddings import load_embedding_model
        from qa.settings import load_settings

        settings = load_settings(notes_dir=args.notes)
        if settings.uses_server:  # fail fast, before the model takes seconds to load
            from qa.store import check_server

            check_server(settings)
        model = load_embedding_model(settings.embed_model, batch_size=settings.embed_batch_size,
                                     cache_dir=settings.model_cache_dir)
        report = sync_index(settings, model, rebuild=args.rebuild, progress=not args.quiet)
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: the index still answers with its previous content; run again to finish.",
              file=sys.stderr)
        return 130
    for line in report.skipped + report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(report.summary)
    return 1 if args.strict and report.skipped else 0


if __name__ == "__main__":
    from qa.pipes import run_quietly_in_pipes

    sys.exit(run_quietly_in_pipes(main))
