"""A section's Markdown → answer units: sentences, list items, lists and table rows, each an exact quote.

Built on `notes.blocks`: a unit's `text` is what an answer shows (clean words, inline code kept), its
`quote` is the passage of the note as written, so a citation can be found and highlighted in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from notes.blocks import Block, BlockDoc, walk_blocks
from notes.sentences import split_sentences

MAX_LIST_ITEMS = 12
MAX_EXAMPLE_LINES = 4  # a short command introduced by "…you can use:" is an answer with its introduction
MAX_ITEM_CHARS = 400  # a multi-sentence bullet or paragraph up to this long is also one unit
_TRAILING = re.compile(r"(?:,|;|\.|\s+and|\s+or|&)\s*$")


@dataclass
class Unit:
    """One candidate answer piece: `quote` is exact note text, `text` is what the answer shows."""

    quote: str
    text: str
    context: str = ""  # the item or introduction it hangs from
    kind: str = "sentence"  # sentence | bullet | item | list | row
    items: list[str] = field(default_factory=list)  # for lists: the items
    label: str = ""  # what it is about when the note says: bold lead-in, callout title, term, first cell
    group: int = 0  # units of one paragraph, one list (with its introduction) or one table share it
    order: int = 0  # position in the section
    start: int = 0  # offset of the quote in the section's Markdown
    parent: str = ""  # the item (or the introduction) it directly hangs from

    @property
    def embed_text(self) -> str:
        return f"{self.context} {self.text}".strip()


def clean_item(text: str) -> str:
    """An item without the punctuation or conjunction that joined it to the next one."""
    while True:
        trimmed = _TRAILING.sub("", text).strip()
        if trimmed == text:
            return text
        text = trimmed


def as_sentence(text: str) -> str:
    text = clean_item(text)
    return text if text.endswith((".", "!", "?")) else text.rstrip(":") + "."


def _lead_in(text: str) -> str:
    """An introduction as it reads before its command: "Install the chart:" (a colon added if none)."""
    text = text.rstrip()
    return text if text.endswith(":") else clean_item(text) + ":"


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", ")"))


def _is_intro(sentence: str) -> bool:
    """'Use cases include', 'Execution Limits:', 'This method is best suited for:' only announce a list."""
    text = sentence.rstrip()
    return text.endswith(":") or not text.endswith((".", "!", "?")) or len(text.split()) <= 4


def _widen(source: str, start: int, end: int) -> tuple[int, int]:
    """A span grown so it does not cut emphasis, code or a link in half."""
    while start > 0 and source[start - 1] in "*_~`[":
        start -= 1
    while end < len(source) and source[end] in "*_~`":
        end += 1
    if source.startswith("](", end):
        close = source.find(")", end)
        if close > 0 and "\n\n" not in source[end:close]:
            end = close + 1
    return start, end


def _span(doc: BlockDoc, block: Block, a: int, b: int) -> tuple[int, int]:
    mapped = [p for p in (block.offsets or [])[a:b] if p >= 0]
    if not mapped:
        return block.start, block.end
    return _widen(doc.source, min(mapped), max(mapped) + 1)


def _hangs_from(blocks: list[Block], index: int, spans_of) -> str:
    """What the block at `index` says to those below it: a whole item, or a paragraph's introduction."""
    above = blocks[index]
    if above.kind == "item":
        return above.text
    spans = spans_of(index)
    intro = above.text[spans[-1][0]:] if spans else above.text
    return intro if intro.rstrip().endswith(":") else ""


def _context(blocks: list[Block], block: Block, spans_of) -> str:
    """The item or introduction a block hangs from (up to two levels), as it reads."""
    parts = []
    parent, levels = block.parent, 0
    while parent is not None and levels < 2:
        said = _hangs_from(blocks, parent, spans_of)
        if said:
            parts.insert(0, said)
        parent, levels = blocks[parent].parent, levels + 1
    return " ".join(parts)


def extract_units(section_text: str) -> list[Unit]:
    """Units of one section, in document order."""
    doc = walk_blocks(section_text)
    blocks = doc.blocks
    units: list[Unit] = []
    spans_cache: dict[int, list[tuple[int, int]]] = {}

    def spans_of(index: int) -> list[tuple[int, int]]:
        if index not in spans_cache:
            spans_cache[index] = split_sentences(blocks[index].text)
        return spans_cache[index]

    def add(unit: Unit) -> None:
        unit.order = len(units)
        units.append(unit)

    # Blocks that introduce code ("Install the chart" over its command): their last sentence is a lead-in,
    # an answer only together with the command (the "example" unit), never alone.
    commands = {b.parent: b for b in blocks if b.kind == "code" and b.parent is not None}

    def item_text(index: int) -> str | None:
        """A list item as one entry of its list: with its command when short, None when it only leads
        into a long code block."""
        text = clean_item(blocks[index].text)
        code = commands.get(index)
        if code is None:
            return text
        lines = [line.strip() for line in code.text.split("\n") if line.strip()]
        if not 0 < len(lines) <= MAX_EXAMPLE_LINES or any("`" in line for line in lines):
            return None
        return f"{_lead_in(text)} " + "; ".join(f"`{line}`" for line in lines)

    for index, block in enumerate(blocks):
        if block.kind in ("row", "data"):
            start, end = block.start, block.end
            add(Unit(doc.source[start:end].strip(), block.text, "", "row", label=block.label, group=block.group,
                     start=start))
            continue
        if block.kind == "code":
            lines = [line.strip() for line in block.text.split("\n") if line.strip()]
            if block.parent is not None and 0 < len(lines) <= MAX_EXAMPLE_LINES:
                intro_block = blocks[block.parent]
                spans = spans_of(block.parent)
                intro_at = spans[-1][0] if spans else 0
                start, _ = _span(doc, intro_block, intro_at, len(intro_block.text))
                code = "; ".join(f"`{line}`" for line in lines if "`" not in line)
                if code:
                    add(Unit(doc.source[start:block.end], f"{_lead_in(intro_block.text[intro_at:])} {code}.",
                             _context(blocks, intro_block, spans_of), "example", label=intro_block.label,
                             group=block.group, start=start))
            continue
        text, spans = block.text, spans_of(index)
        bullet = block.kind == "item"
        heading_like = not bullet and block.depth == 0 and len(spans) == 1 and not _ends_sentence(text) \
            and len(text.split()) < 8
        context = _context(blocks, block, spans_of)
        parent = clean_item(_hangs_from(blocks, block.parent, spans_of)) if block.parent is not None else ""
        for n, (a, b) in enumerate([] if heading_like else spans):
            sentence = text[a:b]
            if len(clean_item(sentence).split()) < 3 or sentence.rstrip().endswith(":"):
                continue
            if block.children and n == len(spans) - 1 and _is_intro(sentence):
                continue
            if index in commands and n == len(spans) - 1:
                continue
            ctx = f"{context} {block.label}".strip() if n > 0 and block.label else context
            shown = as_sentence(sentence)
            if ctx and shown[:1].islower():  # a fragment reads as a sentence with its introduction
                shown = f"{clean_item(ctx).rstrip(':')} {shown}"
            start, end = _span(doc, block, a, b)
            add(Unit(doc.source[start:end], shown, ctx, "bullet" if bullet else "sentence", label=block.label,
                     group=block.group, start=start, parent=parent))
        if len(spans) > 1 and len(text) <= MAX_ITEM_CHARS and not heading_like:
            start, end = _span(doc, block, 0, len(text))
            add(Unit(doc.source[start:end], as_sentence(text), context, "item", label=block.label,
                     group=block.group, start=start, parent=parent))
        direct = [c for c in block.children if blocks[c].kind == "item"][:MAX_LIST_ITEMS]
        if len(direct) >= 2:
            intro_at = spans[-1][0] if spans and not bullet else 0
            start, _ = _span(doc, block, intro_at, len(text))
            end = blocks[direct[-1]].end
            items = [item_text(c) for c in direct]
            head = clean_item(text[intro_at:]).rstrip(":").strip()
            if None in items:  # an item that only leads into a long code block: the list is not an answer
                continue
            add(Unit(doc.source[start:end].rstrip(), f"{head}: {'; '.join(items)}.", "", "list", items,
                     label=block.label, group=block.group, start=start))
    return units


def unit_embed_text(unit: Unit, breadcrumb: str) -> str:
    """What a unit is embedded as: its section's heading path, the item it hangs from, its text."""
    return f"{breadcrumb}: {unit.embed_text}"


@lru_cache(maxsize=4096)
def units_of(section_text: str) -> tuple[Unit, ...]:
    """A section's answer units, parsed once per process."""
    return tuple(extract_units(section_text))
