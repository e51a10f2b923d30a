"""The evaluation report as the Evaluation page shows it: Markdown, with its PNG charts in place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPORTS_DIR = Path(__file__).resolve().parent.parent / "eval" / "reports"
REPORT_MD = "report.md"


def report_folders(extra: list[Path] | tuple = ()) -> list[Path]:
    """Every folder holding a report.md, newest first: eval/reports/ and the folders given (`EVAL_REPORTS`),
    each with its per-corpus subfolders (`python -m eval` writes `<out>/<corpus>/`)."""
    found: dict[Path, float] = {}
    for root in (REPORTS_DIR, *extra):
        root = Path(root)
        for folder in [root, *(sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])]:
            report = folder / REPORT_MD
            if report.is_file():
                found[folder.resolve()] = report.stat().st_mtime
    return sorted(found, key=lambda f: -found[f])
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def report_parts(report_md: Path) -> Iterator[tuple[str, object]]:
    """('markdown', text) and ('image', Path) in document order.

    Images the report links by a relative path (`![…](recall.png)`) cannot load in the browser; they
    come out as files to show with `st.image` (only files inside the reports folder).
    """
    text = report_md.read_text(encoding="utf-8", errors="replace")
    folder = report_md.parent.resolve()
    last = 0
    for match in _IMAGE.finditer(text):
        path = (folder / match.group(1)).resolve()
        if match.group(1).startswith(("http://", "https://")) or not path.is_relative_to(folder):
            continue
        before = text[last:match.start()]
        if before.strip():
            yield "markdown", _escape_dollars(before)
        if path.is_file():
            yield "image", path
        last = match.end()
    rest = text[last:]
    if rest.strip():
        yield "markdown", _escape_dollars(rest)


def _escape_dollars(markdown: str) -> str:
    return re.sub(r"(?<!\\)\$", r"\\$", markdown)
