"""Markdown notes → anchored sections.

Written by hand because no LangChain/markdown splitter keeps what citations need: the explicit
`<a name=…>` anchor before a heading, GitHub-style slugs with de-duplication, line numbers, and a
table of contents marked as navigation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HEADING_PATH_SEPARATOR = " › "

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*#*[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ANCHOR_TAG = re.compile(
    r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["'][^>]*>\s*</a>""", re.IGNORECASE
)
_ANCHOR_ONLY_LINE = re.compile(rf"^\s*(?:{_ANCHOR_TAG.pattern}\s*)+$", re.IGNORECASE)
_TOC_LINE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[^\]]+\]\(#[^)\s]+\)\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_LINK = re.compile(r"<a\b[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_MD_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def section_url(source: str, anchor: str) -> str:
    """`aws-notes.md#15`: how citations and links name a section."""
    return f"{source}#{anchor}" if anchor else source


class SectionAddress:
    """`url` and `breadcrumb` for anything with `source`, `anchor` and `heading_path`."""

    source: str
    anchor: str
    heading_path: tuple[str, ...]

    @property
    def url(self) -> str:
        return section_url(self.source, self.anchor)

    @property
    def breadcrumb(self) -> str:
        return HEADING_PATH_SEPARATOR.join(self.heading_path)


@dataclass(frozen=True)
class Section(SectionAddress):
    """One heading and the text under it, up to the next heading of any level."""

    source: str
    anchor: str
    heading: str
    level: int
    heading_path: tuple[str, ...]
    anchor_path: tuple[str, ...]
    start_line: int
    end_line: int
    text: str
    is_navigation: bool = False

    @property
    def parent_anchor(self) -> str | None:
        return self.anchor_path[-2] if len(self.anchor_path) > 1 else None


@dataclass
class ParsedNote:
    """The sections of one note and the warnings met while parsing it."""

    source: str
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def content_sections(self) -> list[Section]:
        return [s for s in self.sections if not s.is_navigation and s.text.strip()]


def slugify(heading: str) -> str:
    """GitHub-style slug: lower-case, punctuation dropped, spaces to `-`."""
    text = clean_text(heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def clean_text(text: str) -> str:
    """Text as it should be embedded: no images or bare anchors, links reduced to their words."""
    text = _IMAGE.sub("", text)
    text = _HTML_IMAGE.sub("", text)
    text = _ANCHOR_TAG.sub("", text)
    text = _HTML_LINK.sub(lambda m: m.group(1), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _EMPHASIS.sub(lambda m: m.group(2), text)
    text = _HTML_TAG.sub("", text)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@dataclass
class _Heading:
    line_index: int  # 0-based line of the heading text
    first_line_index: int  # 0-based first line that belongs to the heading (anchor line or heading)
    level: int
    text: str
    explicit_anchor: str | None
    underline: bool = False


def _find_headings(lines: list[str]) -> tuple[list[_Heading], list[int]]:
    """Headings outside code fences, with any anchor tag on the lines just above; also empty ones."""
    headings: list[_Heading] = []
    empty: list[int] = []
    fence: str | None = None
    pending_anchor: tuple[str, int] | None = None
    for i, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            pending_anchor = None
            continue
        anchor_line = _ANCHOR_ONLY_LINE.match(line)
        if anchor_line:
            pending_anchor = (_ANCHOR_TAG.findall(line)[-1], i)
            continue
        atx = _ATX_HEADING.match(line)
        setext = (
            i + 1 < len(lines)
            and line.strip()
            and not _LIST_ITEM.match(line)
            and not line.startswith((" " * 4, "\t", ">"))
            and _SETEXT_UNDERLINE.match(lines[i + 1])
            and (i == 0 or not lines[i - 1].strip() or pending_anchor)
        )
        if atx or setext:
            if atx:
                level, raw = len(atx.group(1)), (atx.group(2) or "")
            else:
                level, raw = (1 if lines[i + 1].strip()[0] == "=" else 2), line.strip()
            inline_anchor = _ANCHOR_TAG.findall(raw)
            text = clean_text(raw)
            explicit = inline_anchor[-1] if inline_anchor else (pending_anchor[0] if pending_anchor else None)
            first = pending_anchor[1] if pending_anchor else i
            if not text:
                empty.append(i)
            else:
                headings.append(_Heading(i, first, level, text, explicit, underline=not atx))
        if line.strip():
            pending_anchor = None
    return headings, empty


def _split_toc(body: list[str]) -> tuple[list[int], list[int]]:
    """Indices of body lines that form a table of contents (≥ 2 list lines linking to `#…`)."""
    toc_idx = [i for i, line in enumerate(body) if _TOC_LINE.match(line)]
    if len(toc_idx) < 2:
        return [], list(range(len(body)))
    toc = set(toc_idx)
    return toc_idx, [i for i in range(len(body)) if i not in toc]


def parse_markdown(text: str, source: str, *, title: str | None = None) -> ParsedNote:
    """Split one note into sections; warnings name the file and say what was odd."""
    note = ParsedNote(source=source)
    lines = text.splitlines()
    headings, empty = _find_headings(lines)
    for i in empty:
        note.warnings.append(f"{source}:{i + 1}: heading with no text; its lines stay in the section above")
    skip = {h.line_index + 1 for h in headings if h.underline}

    used: dict[str, int] = {}

    def unique(anchor: str, explicit: bool, line_no: int) -> str:
        anchor = anchor or "section"
        if anchor not in used:
            used[anchor] = 0
            return anchor
        if explicit:
            note.warnings.append(f"{source}:{line_no}: duplicate anchor {anchor!r}; this one gets a suffix")
        while True:
            used[anchor] += 1
            candidate = f"{anchor}-{used[anchor]}"
            if candidate not in used:
                used[candidate] = 0
                return candidate

    def add(anchor, heading, level, hpath, apath, start, end, body_idx: list[int], nav=False):
        body = "\n".join(lines[j] for j in body_idx if j not in skip).strip("\n")
        note.sections.append(
            Section(source, anchor, heading, level, tuple(hpath), tuple(apath), start + 1, end + 1, body, nav)
        )

    stem = title or source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    first = headings[0].first_line_index if headings else len(lines)
    pre = list(range(0, first))
    if any(lines[j].strip() for j in pre):
        toc, rest = _split_toc([lines[j] for j in pre])
        if toc:
            add("contents", "Contents", 0, [stem, "Contents"], ["contents"], toc[0], toc[-1], toc, nav=True)
            used["contents"] = 0
        rest_idx = [pre[j] for j in rest]
        if any(lines[j].strip() for j in rest_idx):
            add("", stem, 0, [stem], [""], 0, max(first - 1, 0), rest_idx)

    stack: list[tuple[int, str, str]] = []  # (level, heading, anchor)
    for n, h in enumerate(headings):
        end = (headings[n + 1].first_line_index if n + 1 < len(headings) else len(lines)) - 1
        while end > h.line_index and not lines[end].strip():
            end -= 1
        anchor = unique(h.explicit_anchor or slugify(h.text), bool(h.explicit_anchor), h.line_index + 1)
        while stack and stack[-1][0] >= h.level:
            stack.pop()
        stack.append((h.level, h.text, anchor))
        hpath, apath = [s[1] for s in stack], [s[2] for s in stack]
        body_idx = list(range(h.line_index + 1, end + 1))
        toc, rest = _split_toc([lines[j] for j in body_idx])
        if toc:
            nav_anchor = unique(f"{anchor}-contents", False, h.line_index + 1)
            add(nav_anchor, "Contents", h.level + 1, hpath + ["Contents"], apath + [nav_anchor],
                body_idx[toc[0]], body_idx[toc[-1]], [body_idx[j] for j in toc], nav=True)
        add(anchor, h.text, h.level, hpath, apath, h.line_index, end, [body_idx[j] for j in rest])
    if not note.content_sections and any(s.is_navigation for s in note.sections):
        note.warnings.append(f"{source}: only a table of contents; nothing to index")
    return note
