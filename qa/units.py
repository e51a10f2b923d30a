"""A section's raw Markdown → answer units: sentences, bullet items and lists, each an exact quote.

Hand-written: answers must quote the note verbatim (the citation's `quote` occurs in the file), so
units keep the exact span of the source text, which sentence splitters that normalise text lose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.parse import clean_text
from qa.text import split_sentences

_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")
_SKIP_LINE = re.compile(r"^\s*(?:<a\s[^>]*>\s*</a>|!\[[^\]]*\]\([^)]*\)|```.*|~~~.*|\|.*\||[-=*_]{3,})\s*$", re.I)
_LABEL = re.compile(r"^\s*(?:\*\*|__)?([^:*_]{2,60}?)(?:\*\*|__)?\s*:")
MAX_LIST_ITEMS = 12
MAX_ITEM_CHARS = 400  # a multi-sentence bullet or paragraph up to this long is also one unit


@dataclass
class Unit:
    """One candidate answer piece: `quote` is exact note text, `text` is what the answer shows."""

    quote: str
    text: str
    context: str = ""  # the parent item or paragraph it hangs from, cleaned
    kind: str = "sentence"  # sentence | bullet | list
    items: list[str] = field(default_factory=list)  # for lists: the cleaned items

    @property
    def embed_text(self) -> str:
        return f"{self.context} {self.text}".strip()


def _clean_item(text: str) -> str:
    text = clean_text(text)
    while True:
        trimmed = re.sub(r"(?:,|;|\.|\s+and|\s+or|&)\s*$", "", text).strip()
        if trimmed == text:
            return text
        text = trimmed


def _display(text: str) -> str:
    text = _clean_item(text)
    return text if text.endswith((".", "!", "?")) else text.rstrip(":") + "."


def _label(text: str) -> str:
    """'**Easy Pricing**: You pay…' → 'Easy Pricing' (the topic a bullet is about)."""
    match = _LABEL.match(text)
    return clean_text(match.group(1)) if match else ""


def _has_children(lines: list[str], i: int, indent: int) -> bool:
    """Whether the next non-blank line is a bullet nested under line `i`."""
    for line in lines[i + 1:]:
        if line.strip():
            bullet = _BULLET.match(line)
            return bool(bullet) and len(bullet.group(1).expandtabs(4)) > indent
    return False


def _ends_sentence(text: str) -> bool:
    return clean_text(text).rstrip().endswith((".", "!", "?", ")"))


def _is_intro(sentence: str) -> bool:
    """'Use cases include', 'Execution Limits:', 'This method is best suited for:' only announce a list."""
    text = clean_text(sentence).rstrip()
    return text.endswith(":") or not text.endswith((".", "!", "?")) or len(text.split()) <= 4


def extract_units(section_text: str) -> list[Unit]:
    """Units of one section, in document order."""
    lines = section_text.split("\n")
    units: list[Unit] = []
    # stack of (indent, clean text, line index) for the bullets and intro paragraphs above a line
    parents: list[tuple[int, str, int]] = []
    children: dict[int, list[int]] = {}
    kinds: dict[int, tuple[int, str]] = {}  # line index → (indent, content)
    intro_cols: dict[int, int] = {}
    in_fence = False
    for i, line in enumerate(lines):
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or not line.strip() or _SKIP_LINE.match(line) or line.lstrip().startswith("#"):
            continue
        bullet = _BULLET.match(line)
        if not bullet and len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip()) >= 4:
            continue  # an indented code block or a wrapped example, not prose to quote
        if bullet:
            indent, content = len(bullet.group(1).expandtabs(4)), bullet.group(2)
        else:
            indent, content = -1, line.strip()
        while parents and parents[-1][0] >= indent and not (indent < 0 and parents[-1][0] < 0):
            parents.pop()
        if indent < 0:
            parents.clear()
        kinds[i] = (indent, content)
        context = " ".join(p[1] for p in parents[-2:] if p[1].rstrip().endswith(":") or p[0] >= 0)
        if parents:
            children.setdefault(parents[-1][2], []).append(i)
        label = _label(content) if indent >= 0 else ""
        spans = split_sentences(content)
        if indent < 0 and spans:  # a paragraph introduces what follows with its last sentence
            intro_start = spans[-1][0]
        else:
            intro_start = 0
        has_children = _has_children(lines, i, indent)
        heading_like = indent < 0 and len(spans) == 1 and not _ends_sentence(content) and len(content.split()) < 8
        for n, (start, end) in enumerate(spans):
            quote = content[start:end].strip()
            if heading_like or len(_clean_item(quote).split()) < 3 or clean_text(quote).endswith(":"):
                continue
            if has_children and n == len(spans) - 1 and _is_intro(quote):
                continue
            ctx = context
            if n > 0 and label:
                ctx = f"{context} {label}".strip()
            ctx = clean_text(ctx).strip()
            shown = _display(quote)
            if ctx and shown[:1].islower():  # a fragment reads as a sentence with its intro
                shown = f"{_clean_item(ctx).rstrip(':')} {shown}"
            units.append(Unit(quote, shown, ctx, "bullet" if indent >= 0 else "sentence"))
        whole = content.strip()
        if len(spans) > 1 and len(whole) <= MAX_ITEM_CHARS and not heading_like:
            units.append(Unit(whole, _display(whole), clean_text(context).strip(), "item"))
        parents.append((indent, clean_text(content[intro_start:]), i))
        intro_cols[i] = intro_start

    for parent, kids in children.items():
        direct = [k for k in kids if kinds[k][0] >= 0 and kinds[k][0] == min(kinds[c][0] for c in kids)]
        if len(direct) < 2:
            continue
        direct = direct[:MAX_LIST_ITEMS]
        last = max(k for k in kids if k <= direct[-1] or k in direct)
        intro_indent, intro = kinds[parent]
        start_col = lines[parent].find(intro) + intro_cols[parent]
        block = "\n".join([lines[parent][start_col:]] + lines[parent + 1:last + 1])
        quote = block.rstrip()
        items = [_clean_item(kinds[k][1]) for k in direct]
        head = _clean_item(intro[intro_cols[parent]:]).rstrip(":").strip()
        text = f"{head}: {'; '.join(items)}."
        units.append(Unit(quote, text, "", "list", items))
    return units
