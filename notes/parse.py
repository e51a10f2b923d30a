"""A note's Markdown → anchored sections, its front matter, and the navigation to leave out.

The Markdown itself is read by markdown-it (`notes.markdown`). Hand-written here, because no parser
or splitter knows them: the explicit `<a name=…>` anchor on the line(s) before a heading, GitHub's ids
for the others (`notes.slug`), and what is navigation rather than content (a list or table made only
of in-page links, a lone "Back to top" link).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it.token import Token

from notes.blocks import in_page_links_only
from notes.front_matter import normalize_newlines, read_front_matter
from notes.markdown import parse_tokens
from notes.model import ParsedNote, Section
from notes.slug import Slugger

_ANCHOR_TAG = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["'][^>]*>\s*(?:</a>)?""", re.IGNORECASE)
_ANCHOR_ONLY = re.compile(rf"^\s*(?:{_ANCHOR_TAG.pattern}\s*)+$", re.IGNORECASE)


@dataclass
class _Heading:
    token: int  # index of heading_open
    first_line: int  # 0-based first line belonging to it (its anchor line, else the heading)
    body_line: int  # first line after the heading (a setext heading has two)
    level: int
    text: str
    slug_text: str
    explicit: str | None


def _inline_words(inline: Token, *, code_ticks: bool) -> str:
    """A heading's text: its words and code (what GitHub's ids are made from), no markup or HTML."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "wikilink"):
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(f"`{child.content}`" if code_ticks else child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image" and code_ticks:
            parts.append(child.content)
    return "".join(parts)


class _InPageLinks(HTMLParser):
    """Counts the `<a href="#…">` links of an HTML fragment and whether it holds any words outside them (a
    `<summary>` is the fold's label, not content). Python's own HTML tokenizer: no package reads this."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links, self.words, self._inside = 0, False, []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("a", "summary"):
            href = dict(attrs).get("href") or ""
            in_page = tag == "summary" or href.startswith("#")
            self.links += tag == "a" and in_page
            self.words |= tag == "a" and not in_page
            self._inside.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._inside:
            del self._inside[self._inside.index(tag):]

    def handle_data(self, data: str) -> None:
        if not self._inside and re.search(r"\w", data):
            self.words = True


def _html_links(html: str) -> int:
    """How many links to this page's headings an HTML fragment holds; -1 when it holds anything else."""
    reader = _InPageLinks()
    reader.feed(html)
    reader.close()
    return -1 if reader.words else reader.links


def _html_navigation(tokens: list[Token], i: int) -> tuple[int, int]:
    """(index after it, number of in-page links) of the HTML table of contents starting at token `i`: a
    `<details>` fold (up to its `</details>`, Markdown lists of links inside included) or one HTML block of
    links (`<ol><li><a href="#…">`); links -1 when anything in it is content."""
    first = tokens[i].content
    if not re.match(r"\s*<details\b", first, re.I):
        return i + 1, _html_links(first)
    depth, links, j = 0, 0, i
    while j < len(tokens):
        t = tokens[j]
        if t.level == 0 and t.type == "html_block":
            depth += len(re.findall(r"<details\b", t.content, re.I)) - len(re.findall(r"</details\s*>", t.content, re.I))
            found = _html_links(t.content)
            links = -1 if found < 0 or links < 0 else links + found
        elif t.type == "inline":
            links = links + 1 if links >= 0 and t.children and in_page_links_only(t.children) else -1
        j += 1
        if depth <= 0:
            break
    return j, links


def _navigation_lines(tokens: list[Token]) -> set[int]:
    """Lines of tables of contents: lists or tables made only of links to headings of this page, in Markdown
    or in HTML (a `<details>` fold of them, as GitHub READMEs have)."""
    toc: set[int] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.level != 0 or not token.map:
            i += 1
            continue
        if token.type == "html_block":
            end, links = _html_navigation(tokens, i)
            last = next((t.map[1] for t in reversed(tokens[i:end]) if t.map), token.map[1])
            if links >= 2:
                toc.update(range(token.map[0], last))
            i = end
            continue
        if token.type in ("bullet_list_open", "ordered_list_open", "table_open"):
            close = token.type.replace("_open", "_close")
            j, depth, cells, links = i + 1, 1, 0, 0
            while j < len(tokens) and depth:
                t = tokens[j]
                if t.type == token.type:
                    depth += 1
                elif t.type == close:
                    depth -= 1
                elif t.type == "inline" and tokens[j - 1].type in ("paragraph_open", "td_open"):
                    cells += 1
                    if t.children and in_page_links_only(t.children):
                        links += 1
                    elif t.content.strip():
                        links = -len(tokens)  # some real content: not navigation
                j += 1
            if links >= 2 and cells:
                toc.update(range(*token.map))
            i = j
            continue
        i += 1
    return toc


def _explicit_anchor(lines: list[str], heading_line: int) -> tuple[str | None, int | None]:
    """(anchor, its line) of a line made only of `<a name>` tags above a heading (blank lines between)."""
    i = heading_line - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    if i < 0 or not _ANCHOR_ONLY.match(lines[i]):
        return None, None
    return _ANCHOR_TAG.findall(lines[i])[-1], i


def parse_note(text: str, source: str) -> ParsedNote:
    """Split one note into sections; warnings name the file and line and say what was odd."""
    note = ParsedNote(source=source)
    text = normalize_newlines(text)
    tokens, prepared = parse_tokens(text)
    note.meta = read_front_matter(text, source, note.warnings)
    lines = text.split("\n")
    skip: set[int] = set()
    if tokens and tokens[0].type == "front_matter":
        skip.update(range(*tokens[0].map))
    if prepared.toml_front_matter is not None:
        skip.update(range(prepared.toml_front_matter.count("\n") + 3))
    toc = _navigation_lines(tokens)

    headings: list[_Heading] = []
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0:
            continue
        inline = tokens[i + 1]
        words = " ".join(_inline_words(inline, code_ticks=True).split())
        inline_anchor = [m for c in inline.children or [] if c.type == "html_inline"
                         for m in _ANCHOR_TAG.findall(c.content)]
        if not words:
            note.warnings.append(f"{source}:{token.map[0] + 1}: heading with no text; its lines stay in the section above")
            continue
        before, first = _explicit_anchor(lines, token.map[0])
        explicit = inline_anchor[-1] if inline_anchor else before
        headings.append(_Heading(i, first if before and not inline_anchor else token.map[0], token.map[1],
                                 int(token.tag[1]), words, _inline_words(inline, code_ticks=False).strip(),
                                 explicit))
    note.title = note.meta.title

    slugger = Slugger()
    for h in headings:
        if h.explicit:
            slugger.reserve(h.explicit)

    def add(anchor: str, heading: str, level: int, hpath, apath, start: int, end: int, body: list[int],
            nav: bool = False) -> None:
        content = "\n".join(lines[j] for j in body).strip("\n")
        note.sections.append(Section(source, anchor, heading, level, tuple(hpath), tuple(apath), start + 1,
                                     end + 1, content, nav, note.title, note.meta.tags))

    def split_body(first: int, last: int) -> tuple[list[int], list[int]]:
        body = [j for j in range(first, last + 1) if j not in skip]
        return [j for j in body if j in toc], [j for j in body if j not in toc]

    first_heading = headings[0].first_line if headings else len(lines)
    nav, rest = split_body(0, first_heading - 1)
    if nav:
        anchor = slugger.slug("contents")
        add(anchor, "Contents", 0, [note.title, "Contents"], [anchor], nav[0], nav[-1], nav, nav=True)
    if any(lines[j].strip() for j in rest):
        add("", note.title, 0, [note.title], [""], rest[0], max(first_heading - 1, 0), rest)

    used_explicit: set[str] = set()
    stack: list[tuple[int, str, str]] = []  # (level, heading, anchor)
    for n, h in enumerate(headings):
        end = (headings[n + 1].first_line if n + 1 < len(headings) else len(lines)) - 1
        while end >= h.body_line and not lines[end].strip():
            end -= 1
        if h.explicit and h.explicit not in used_explicit:
            anchor = h.explicit
            used_explicit.add(anchor)
        else:
            if h.explicit:
                note.warnings.append(f"{source}:{tokens[h.token].map[0] + 1}: duplicate anchor {h.explicit!r}; "
                                     "this one gets a suffix")
            anchor = slugger.slug(h.explicit or h.slug_text)
        while stack and stack[-1][0] >= h.level:
            stack.pop()
        stack.append((h.level, h.text, anchor))
        hpath, apath = [s[1] for s in stack], [s[2] for s in stack]
        nav, rest = split_body(h.body_line, end)
        if nav:
            nav_anchor = slugger.slug(f"{anchor}-contents")
            add(nav_anchor, "Contents", h.level + 1, hpath + ["Contents"], apath + [nav_anchor], nav[0], nav[-1],
                nav, nav=True)
        add(anchor, h.text, h.level, hpath, apath, tokens[h.token].map[0], max(end, h.body_line - 1), rest)
    if not note.content_sections and any(s.is_navigation for s in note.sections):
        note.warnings.append(f"{source}: only a table of contents; nothing to index")
    return note
