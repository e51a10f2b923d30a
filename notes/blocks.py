"""Markdown → blocks of readable text (paragraphs, list items, table rows, data lines, code).

Each block's text reads as the note does on screen: soft line breaks are spaces, links, images,
emphasis and HTML are reduced to their words, inline code stays code (in backticks). Every character
of it keeps the offset of the character it came from in the source, so a sentence can be cited as
exactly the passage of the note that holds it. markdown-it gives blocks their lines but not inline
positions; recovering those (`_inline_display`) is the hand-written part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from notes.markdown import Prepared, parse_tokens

ROW_SEPARATOR = " · "
_DATA_COLUMNS = re.compile(r"\S(?:\t|\s{2,})\S")
_CODE_PUNCTUATION = re.compile(r"[{};=<>$\\]|^\s*[#/$>]|\b(?:def|class|import|return|function|var|let|const)\b")
_LEAD_LABEL = re.compile(r"^([A-Z][\w/&@.+-]*(?:[ -][\w/&@.+()-]+){0,4}?)\s*:\s+\S")


@dataclass
class Block:
    """One piece of readable text and where it sits in the note and in its lists."""

    kind: str  # paragraph | item | row | data | code
    text: str
    offsets: list[int] | None  # source offset of each character of `text`; None: quoted as whole lines
    start: int  # source span of the whole block
    end: int
    line: int  # first line, 0-based
    depth: int = 0  # list nesting, 0 outside lists
    parent: int | None = None  # the block it hangs from: the enclosing item, or the paragraph before a list
    group: int = 0  # one paragraph, one top-level list (with the paragraph introducing it), one table
    label: str = ""  # what the block is about, when the note says: a bold lead-in, a callout title, a term
    children: list[int] = field(default_factory=list)


@dataclass
class BlockDoc:
    """The blocks of one Markdown text, with the (prepared) source they point into."""

    source: str
    blocks: list[Block]
    prepared: Prepared


def _line_starts(text: str) -> list[int]:
    starts, total = [], 0
    for line in text.split("\n"):
        starts.append(total)
        total += len(line) + 1
    return starts


def _content_offsets(inline: Token, lines: list[str], starts: list[int]) -> list[int]:
    """The source offset of each character of `inline.content` (-1 where it cannot be placed).

    markdown-it strips list markers, `>` and indentation from a block's lines; each content line is
    still the end of its source line (trailing blanks aside).
    """
    first, last = inline.map
    out: list[int] = []
    pieces = inline.content.split("\n")
    for k, piece in enumerate(pieces):
        i = first + k
        col = -1
        if i < min(last, len(lines)):
            raw = lines[i]
            stripped = raw.rstrip()
            col = len(stripped) - len(piece) if stripped.endswith(piece) else raw.find(piece)
        out.extend(range(starts[i] + col, starts[i] + col + len(piece)) if col >= 0 else [-1] * len(piece))
        if k < len(pieces) - 1:
            out.append(starts[i] + len(lines[i]) if col >= 0 else -1)
    return out


def _inline_display(inline: Token, offsets: list[int]) -> tuple[str, list[int], str]:
    """(display text, source offset per character, bold lead-in label) of one inline token."""
    content = inline.content
    chars: list[str] = []
    where: list[int] = []
    cursor = 0

    def at(i: int) -> int:
        return offsets[i] if 0 <= i < len(offsets) else -1

    def emit(text: str, positions: list[int]) -> None:
        chars.extend(text)
        where.extend(positions)

    def locate(text: str) -> list[int]:
        nonlocal cursor
        if not text:
            return []
        found = content.find(text, cursor)
        if found >= 0:
            cursor = found + len(text)
            return [at(found + j) for j in range(len(text))]
        positions = []  # decoded entities or escapes: align character by character
        for ch in text:
            j = content.find(ch, cursor, cursor + 12)
            positions.append(at(j if j >= 0 else cursor))
            if j >= 0:
                cursor = j + 1
        return positions

    label, in_lead, lead = "", False, []
    for n, child in enumerate(inline.children or []):
        kind = child.type
        if kind == "strong_open" and not chars:
            in_lead = True
        elif kind == "strong_close" and in_lead:
            in_lead = False
            following = inline.children[n + 1].content if n + 1 < len(inline.children) else ""
            text = "".join(lead).strip()
            if text.endswith(":") or following.lstrip().startswith((":", " -", " –", " —")):
                label = text.rstrip(":").strip()
        elif kind in ("text", "image"):
            emit(child.content, locate(child.content))
            if in_lead:
                lead.append(child.content)
        elif kind == "code_inline":
            opened = content.find(child.markup, cursor)
            if opened >= 0:
                cursor = opened + len(child.markup)
            emit("`", [at(opened)])
            emit(child.content, locate(child.content))
            closed = content.find(child.markup, cursor)
            if closed >= 0:
                cursor = closed + len(child.markup)
            emit("`", [at(closed + len(child.markup) - 1 if closed >= 0 else cursor)])
            if in_lead:
                lead.append(f"`{child.content}`")
        elif kind in ("softbreak", "hardbreak"):
            j = content.find("\n", cursor)
            emit(" ", [at(j)])
            if j >= 0:
                cursor = j + 1
        elif kind == "wikilink":
            j = content.find(child.markup, cursor)
            shown = child.content
            inner = child.markup.find(shown) if j >= 0 else -1
            emit(shown, [at(j + inner + k) if inner >= 0 else at(j) for k in range(len(shown))])
            if j >= 0:
                cursor = j + len(child.markup)
        elif kind == "html_inline":
            j = content.find(child.content, cursor)
            if j >= 0:
                cursor = j + len(child.content)
            if re.match(r"<br\b", child.content, re.I):
                emit(" ", [at(j)])
    return _collapse(chars, where), label


def in_page_links_only(children: list[Token]) -> bool:
    """Only links to `#…` in this page (and blanks or decoration inside them)."""
    links, depth = 0, 0
    for child in children:
        if child.type == "link_open":
            if not str(child.attrGet("href") or "").startswith("#"):
                return False
            links += 1
            depth += 1
        elif child.type == "link_close":
            depth -= 1
        elif child.type in ("softbreak", "hardbreak") or (child.type == "text" and not child.content.strip()):
            continue
        elif depth == 0 and not (child.type in ("text", "html_inline") and not re.search(r"\w", child.content)):
            return False
    return links > 0


def _collapse(chars: list[str], where: list[int]) -> tuple[str, list[int]]:
    text, positions, space = [], [], False
    for ch, pos in zip(chars, where):
        if ch.isspace():
            space = bool(text)
            continue
        if space:
            text.append(" ")
            positions.append(pos)
            space = False
        text.append(ch)
        positions.append(pos)
    return "".join(text), positions


def _is_data(code: str) -> bool:
    """Aligned columns of figures and labels (a table pasted as text), not a program or a command."""
    rows = [line for line in code.split("\n") if line.strip()]
    if len(rows) < 2 or any(_CODE_PUNCTUATION.search(line) for line in rows):
        return False
    columns = sum(1 for line in rows if _DATA_COLUMNS.search(line.strip()))
    figures = sum(1 for line in rows if re.search(r"\d", line))
    return columns >= 0.6 * len(rows) and figures >= 0.5 * len(rows)


def _cells(line: str) -> list[str]:
    return re.split(r"\t+|\s{2,}", line.strip())


def walk_blocks(markdown: str) -> BlockDoc:
    """The readable blocks of a Markdown text, in document order."""
    tokens, prepared = parse_tokens(markdown)
    lines = prepared.text.split("\n")
    starts = _line_starts(prepared.text)
    blocks: list[Block] = []
    doc = BlockDoc(markdown, blocks, prepared)

    def span(first: int, last: int) -> tuple[int, int]:
        last = min(last, len(lines))
        return starts[first], starts[last - 1] + len(lines[last - 1])

    groups = 0
    items: list[int | None] = []  # per open list item: its first block, once seen
    lists: list[int] = []  # per open list: its group
    labels: list[str] = []  # callout / admonition titles and definition terms around the current block
    headers: list[str] = []
    in_head = False
    row_cells: list[str] = []
    row_map = None
    list_intro: int | None = None
    term = ""  # the definition-list term its definitions are about
    previous_top: int | None = None  # the last block outside any list (a candidate list intro)

    def add(block: Block) -> int:
        blocks.append(block)
        return len(blocks) - 1

    for i, token in enumerate(tokens):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            if not lists:
                intro = previous_top if previous_top is not None and previous_top == len(blocks) - 1 else None
                list_intro = intro
                if intro is not None:
                    lists.append(blocks[intro].group)
                else:
                    groups += 1
                    lists.append(groups)
            else:
                lists.append(lists[-1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                list_intro, previous_top = None, None
        elif kind == "list_item_open":
            items.append(None)
        elif kind == "list_item_close":
            items.pop()
        elif kind in ("blockquote_open", "admonition_open", "dd_open"):
            label = ""
            if kind == "blockquote_open" and token.map and token.map[0] in prepared.callouts:
                callout = prepared.callouts[token.map[0]]
                label = callout.title or callout.kind.capitalize()
            elif kind == "admonition_open":
                label = token.content or (token.meta or {}).get("tag", "").capitalize()
            elif kind == "dd_open":
                label = term
            labels.append(label)
        elif kind in ("blockquote_close", "admonition_close", "dd_close"):
            labels.pop()
        elif kind == "inline" and tokens[i - 1].type == "dt_open":
            term = _inline_display(token, [])[0][0]
        elif kind == "thead_open":
            in_head, headers = True, []
        elif kind == "thead_close":
            in_head = False
        elif kind == "table_open":
            groups += 1
            previous_top = None
        elif kind == "tr_open":
            row_cells, row_map = [], token.map
        elif kind == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            text = _inline_display(inline=token, offsets=[])[0][0]
            (headers if in_head else row_cells).append(text)
        elif kind == "tr_close" and not in_head and row_map:
            pairs = [f"{h}: {c}" if h else c for h, c in zip(headers + [""] * len(row_cells), row_cells) if c]
            if pairs:
                first, last = span(*row_map)
                add(Block("row", ROW_SEPARATOR.join(pairs), None, first, last, row_map[0], group=groups,
                          label=row_cells[0] if row_cells else ""))
        elif kind == "inline" and tokens[i - 1].type == "paragraph_open" and token.map:
            if token.children and in_page_links_only(token.children):
                continue  # "Back to top", a row of links to headings: navigation, not content
            offsets = _content_offsets(token, lines, starts)
            (text, where), lead = _inline_display(token, offsets)
            if not text:
                continue
            mapped = [p for p in where if p >= 0]
            first, last = (min(mapped), max(mapped) + 1) if mapped else span(*token.map)
            label = lead or _lead_label(text) or next((x for x in reversed(labels) if x), "")
            if items:
                depth = len(items)
                parent = next((b for b in reversed(items[:-1]) if b is not None), list_intro)
                if items[-1] is None:
                    index = add(Block("item", text, where, first, last, token.map[0], depth, parent,
                                      lists[-1] if lists else groups, label))
                    items[-1] = index
                else:  # a later paragraph of the same item
                    index = add(Block("paragraph", text, where, first, last, token.map[0], depth, items[-1],
                                      lists[-1] if lists else groups, label))
                if parent is not None:
                    blocks[parent].children.append(index)
            else:
                groups += 1
                previous_top = add(Block("paragraph", text, where, first, last, token.map[0], 0, None, groups,
                                         label))
        elif kind in ("fence", "code_block") and token.map:
            groups += 1
            code = token.content.rstrip("\n")
            body_first = token.map[0] + (1 if kind == "fence" else 0)
            if _is_data(code):
                rows = [n for n, line in enumerate(code.split("\n")) if line.strip()]
                header = _cells(code.split("\n")[rows[0]])
                has_header = not re.search(r"\d", code.split("\n")[rows[0]])
                for n in rows[1:] if has_header else rows:
                    line_no = body_first + n
                    cells = _cells(lines[line_no])
                    text = ROW_SEPARATOR.join(f"{h}: {c}" for h, c in zip(header, cells)) \
                        if has_header and len(cells) == len(header) else " ".join(lines[line_no].split())
                    first, last = span(line_no, line_no + 1)
                    add(Block("data", text, None, first, last, line_no, group=groups, label=cells[0]))
            else:
                first, last = span(*token.map)
                intro = len(blocks) - 1  # "…you can use it:" right before the code introduces it,
                introduced = intro >= 0 and blocks[intro].kind in ("paragraph", "item") \
                    and blocks[intro].text.rstrip().endswith(":")
                # …and so does the item the code sits in ("- Install the chart" with its command below).
                introduced = introduced or bool(items) and items[-1] is not None and intro >= items[-1]
                add(Block("code", code, None, first, last, token.map[0], group=blocks[intro].group if introduced
                          else groups, parent=intro if introduced else None))
            previous_top = None
        elif kind in ("heading_open", "hr", "html_block") and not items:
            previous_top = None
    return doc


def _lead_label(text: str) -> str:
    """'Easy Pricing: you pay…' → 'Easy Pricing' (a short capitalised lead-in before a colon)."""
    match = _LEAD_LABEL.match(text)
    return match.group(1) if match else ""


def plain_text(markdown: str) -> str:
    """A Markdown text as it reads: one line per paragraph, list item or row, a blank line between
    paragraphs, lists and tables; code kept as code."""
    doc = walk_blocks(markdown)
    out: list[str] = []
    previous = None
    for block in doc.blocks:
        if previous is not None and not (block.kind == previous.kind and block.kind in ("item", "row", "data")
                                         and block.group == previous.group):
            out.append("")
        previous = block
        if block.kind == "item":
            out.append("  " * (block.depth - 1) + "- " + block.text)
        else:
            out.append(block.text)
    return "\n".join(out).strip()
